"""
Django settings that load the way an LMS does.

``common`` mimics the parts of edx-platform's ``lms/envs/common.py`` that matter
here; ``edx_order`` and ``tutor_order`` finish it in the two orders real
deployments use (see their docstrings).
"""
