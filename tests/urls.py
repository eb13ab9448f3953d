"""URLs of the test LMS: the plugins' URLs, as the LMS mounts them."""

from edx_django_utils.plugins import get_plugin_url_patterns

urlpatterns = get_plugin_url_patterns("lms.djangoapp")
