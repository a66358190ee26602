"""The Celery table (api.queue.TASKS): every task the workers register is stated there once, and binds to it."""

from __future__ import annotations

from api.queue import TASKS, celery_config, task_options
from api.settings import Settings


def test_every_worker_task_is_bound_to_its_entry_in_the_table(tmp_path):
    import worker.app  # noqa: F401  (registers the tasks)
    from api.queue import celery_app

    registered = {name for name in celery_app.tasks if name.startswith("nas.")}
    assert registered == {task.name for task in TASKS}
    settings = Settings(data_dir=str(tmp_path))
    config = celery_config(settings)
    for task in TASKS:
        bound = celery_app.tasks[task.name]
        options = task_options(task)
        assert (bound.acks_late, bound.reject_on_worker_lost, bound.max_retries) == (
            options["acks_late"], options["reject_on_worker_lost"], options["max_retries"])
        assert config["task_routes"][task.name] == {"queue": task.queue}
        assert celery_app.amqp.router.route({}, task.name)["queue"].name == task.queue
        limits = config["task_annotations"].get(task.name)
        assert limits == (None if task.limits is None else
                          {"time_limit": task.limits(settings)[0], "soft_time_limit": task.limits(settings)[1]})


def test_time_limits_follow_the_settings_and_the_soft_limit_comes_first(tmp_path):
    settings = Settings(data_dir=str(tmp_path), ingest_time_limit_s=100, trial_time_limit_s=200,
                        model_time_limit_s=300)
    annotations = celery_config(settings)["task_annotations"]
    assert annotations == {"nas.datasets.ingest": {"time_limit": 100, "soft_time_limit": 70},
                           "nas.trials.run": {"time_limit": 260, "soft_time_limit": 200},
                           "nas.models.build": {"time_limit": 300, "soft_time_limit": 240}}
