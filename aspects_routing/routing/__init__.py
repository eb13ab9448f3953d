"""Where the queue of an Aspects task is decided (:mod:`.router`) and how Celery learns it (:mod:`.install`)."""
