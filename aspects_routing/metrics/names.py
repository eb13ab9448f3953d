"""Names of the metrics aspects-routing records, and their help texts."""

PUBLISHED = "aspects_tasks_published_total"
STARTED = "aspects_tasks_started_total"
SUCCEEDED = "aspects_tasks_succeeded_total"
FAILED = "aspects_tasks_failed_total"
RETRIED = "aspects_tasks_retried_total"
QUEUE_WAIT = "aspects_task_queue_wait_seconds"
RUNTIME = "aspects_task_runtime_seconds"
QUEUE_DEPTH = "aspects_queue_depth"
DROPPED = "aspects_metrics_dropped_total"
STORE_UP = "aspects_metrics_store_up"

#: The task counters, in pipeline order.
TASK_COUNTERS = (PUBLISHED, STARTED, SUCCEEDED, FAILED, RETRIED)

HELP = {
    PUBLISHED: "Aspects Celery tasks published (by LMS/CMS processes and by workers), by task and queue.",
    STARTED: "Aspects Celery tasks a worker started, by task and queue.",
    SUCCEEDED: "Aspects Celery tasks that returned normally, by task and queue.",
    FAILED: "Aspects Celery tasks that raised (after their retries), by task and queue.",
    RETRIED: "Aspects Celery task runs that asked to be retried, by task and queue.",
    QUEUE_WAIT: "Seconds from publishing (or the ETA, if later) to a worker starting an Aspects task.",
    RUNTIME: "Seconds a worker spent running an Aspects task.",
    QUEUE_DEPTH: "Messages waiting in an Aspects queue (Redis broker LLEN, read at scrape time).",
    DROPPED: "Metric events lost because the buffer was full or the metrics store could not be written.",
    STORE_UP: "1 if the metrics store answered this scrape, 0 if not.",
}
