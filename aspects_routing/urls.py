"""URLs of aspects-routing, mounted under ``/aspects-routing/`` in the LMS and CMS."""

urlpatterns = []
