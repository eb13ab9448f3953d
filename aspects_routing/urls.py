"""URLs of aspects-routing, mounted under ``/aspects-routing/`` in the LMS and CMS."""

from django.urls import path

from aspects_routing.metrics import views as metrics_views

urlpatterns = [
    path("metrics", metrics_views.metrics, name="metrics"),
]
