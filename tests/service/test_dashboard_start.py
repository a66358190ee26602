"""Starting work from the dashboard, in headless Chromium: a dataset uploaded from the drop zone (progress, then its
status until ready or failed), a search started from the form (client checks, the server's 422 next to its field),
the selected trials' learning curves overlaid on the experiment page, trials stopped one by one from the trial table,
and the final model's ONNX file downloaded as the page hands it to the browser."""

from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest

from tests import archives
from tests.service.helpers import (TERMINAL, TINY_SPACE, all_trials, by_testid, experiment_body, read, ready_dataset,
                                   save_screenshot, sign_in, wait_for_a_trained_epoch, wait_for_status, wait_until)

pytestmark = [pytest.mark.slow, pytest.mark.stack, pytest.mark.parametrize("stack", ["postgres"], indirect=True)]


def open_page(driver, base_url: str, key: str, hash_: str) -> None:
    sign_in(driver, base_url, key)
    wait_until(driver, lambda d: any(read(d, "[data-testid=experiments-total]")), what="experiments page")
    driver.get(f"{base_url}/{hash_}")


def drop_file(driver, testid: str, name: str, data: bytes) -> None:
    """Dispatches a drop of one file on the element, as a drag from the desktop does."""
    driver.execute_script("""
        const bytes = Uint8Array.from(atob(arguments[2]), (c) => c.charCodeAt(0));
        const files = new DataTransfer();
        files.items.add(new File([bytes], arguments[1], {type: "application/zip"}));
        document.querySelector(`[data-testid=${arguments[0]}]`).dispatchEvent(
            new DragEvent("drop", {dataTransfer: files, bubbles: true, cancelable: true}));""",
                          testid, name, base64.b64encode(data).decode("ascii"))


def fill(driver, values: dict[str, str]) -> None:
    """Types into the new-experiment form's fields, named by their contract path."""
    for path, value in values.items():
        field = driver.find_element("css selector", f'[name="{path}"]')
        field.clear()
        field.send_keys(value)


def field_errors(driver) -> dict[str, str]:
    return {path: text for path, text in zip(read(driver, "[data-testid=field-error]", "data-for"),
                                             read(driver, "[data-testid=field-error]"), strict=True) if text}


def tick(driver, number: int) -> None:
    """Clicks the selection box of trial ``number`` in the trial table."""
    driver.find_element("css selector", f'[data-testid=trial-row][data-number="{number}"] input[data-select]').click()


def record_stopping(driver) -> None:
    """From now until the page reloads, notes each trial row that ever shows "stopping…": for a pending trial the
    state lasts only until the next poll brings its final status, too short to catch by polling the page."""
    driver.execute_script("""
        window.nasStopping = [];
        const note = () => document.querySelectorAll("[data-testid=trial-stopping]").forEach((button) => {
          const number = Number(button.closest("[data-testid=trial-row]").dataset.number);
          if (!window.nasStopping.includes(number)) window.nasStopping.push(number);
        });
        new MutationObserver(note).observe(document.body, {childList: true, subtree: true});""")


def stop_trial(driver, number: int) -> None:
    """Clicks Stop in trial ``number``'s row and accepts the confirmation, after checking what it asks."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    def clicked(d) -> bool:
        try:  # the table is redrawn whenever a poll brings new epochs: find and click in one go
            d.find_element("css selector", f'[data-testid=trial-row][data-number="{number}"] '
                                           "[data-testid=trial-stop]").click()
            return True
        except StaleElementReferenceException:
            return False

    wait_until(driver, clicked, what=f"trial {number}'s Stop button")
    confirm = WebDriverWait(driver, 10).until(expected_conditions.alert_is_present())
    assert confirm.text == f"Stop trial {number}? It keeps the epochs it trained; the search goes on."
    confirm.accept()


def row_status(driver, number: int) -> list[str]:
    return read(driver, f'[data-testid=trial-row][data-number="{number}"]', "data-status")


def capture_download(driver, testid: str, timeout_s: float = 30) -> tuple[str, bytes]:
    """Clicks a download button and returns the file name and bytes the page hands to the browser: the blob behind the
    link it makes and clicks, taken instead of saved (until the page reloads)."""
    driver.execute_script("""
        window.nasDownloads = [];
        const blobs = new Map();
        const createObjectURL = URL.createObjectURL.bind(URL), click = HTMLAnchorElement.prototype.click;
        URL.createObjectURL = (blob) => { const url = createObjectURL(blob); blobs.set(url, blob); return url; };
        HTMLAnchorElement.prototype.click = function () {
          if (!this.download || !blobs.has(this.href)) return click.call(this);
          window.nasDownloads.push({name: this.download, blob: blobs.get(this.href)});
        };""")
    by_testid(driver, testid)[0].click()
    wait_until(driver, lambda d: d.execute_script("return window.nasDownloads.length"), timeout_s=timeout_s,
               what=f"the file of {testid}")
    name, encoded = driver.execute_async_script("""
        const done = arguments[arguments.length - 1], [download] = window.nasDownloads, reader = new FileReader();
        reader.onload = () => done([download.name, reader.result.split(",")[1]]);
        reader.readAsDataURL(download.blob);""")
    return name, base64.b64decode(encoded)


def test_an_uploaded_archive_becomes_a_ready_dataset(stack, client, api_key, browser, tmp_path):
    archive = tmp_path / "shapes.zip"
    archive.write_bytes(archives.make_image_folder_zip(classes={"ring": 10, "dot": 10}, size=(16, 16)))
    open_page(browser, stack.base_url, api_key.key, "#/datasets")
    wait_until(browser, lambda d: by_testid(d, "dataset-drop-zone"), what="the drop zone")
    # The list is fetched after the page draws: wait for it to replace its "Loading…" placeholder.
    wait_until(browser, lambda d: "No datasets yet" in "".join(read(d, "[data-testid=datasets]")),
               what="the empty dataset list")

    started = time.monotonic()
    by_testid(browser, "upload-name")[0].send_keys("shapes from the browser")
    by_testid(browser, "upload-input")[0].send_keys(str(archive))
    wait_until(browser, lambda d: read(d, "[data-testid=upload-dataset-status]", "data-status") == ["ready"],
               timeout_s=60, what="the uploaded dataset ready")
    # The bar moved with the upload's progress events, up to the whole file.
    assert read(browser, "[data-testid=upload-progress]", "value") == ["100"]
    [dataset] = client.get("/v1/datasets").json()["data"]
    assert dataset["name"] == "shapes from the browser" and dataset["status"] == "ready"
    assert read(browser, "[data-testid=upload-result]", "data-id") == [dataset["id"]]
    assert "20 images in 2 classes" in read(browser, "[data-testid=upload-result]")[0]
    wait_until(browser, lambda d: read(d, "[data-testid=dataset-status]", "data-status") == ["ready"], what="row")
    link = read(browser, "[data-testid=upload-start-experiment]", "href")[0]
    assert link.endswith(f"#/experiments/new/{dataset['id']}")
    print(f"upload to ready: {time.monotonic() - started:.1f}s")

    # A dropped archive is followed too, here to its failure and the reason.
    drop_file(browser, "dataset-drop-zone", "one-class.zip", archives.single_class_zip())
    wait_until(browser, lambda d: read(d, "[data-testid=upload-dataset-status]", "data-status") == ["failed"],
               timeout_s=60, what="the dropped dataset failed")
    failed = next(d for d in client.get("/v1/datasets").json()["data"] if d["status"] == "failed")
    assert failed["detail"] and failed["detail"] in read(browser, "[data-testid=upload-result]")[0]

    # A refused upload shows the problem's detail and each field error; nothing is created.
    by_testid(browser, "upload-name")[0].send_keys("x" * 201)
    by_testid(browser, "upload-input")[0].send_keys(str(archive))
    wait_until(browser, lambda d: read(d, "[data-testid=upload-error]"), what="the upload error")
    assert read(browser, "[data-testid=upload-error-items] li") == [
        "name: must be 1 to 200 characters, none of them NUL"]
    assert "HTTP 422" in read(browser, "[data-testid=upload-state]")[0]
    assert client.get("/v1/datasets").json()["total"] == 2
    assert not read(browser, "[data-testid=page-error]")
    save_screenshot(browser, "upload")


def test_the_form_starts_a_search_and_opens_its_page(stack, client, api_key, browser):
    dataset = ready_dataset(client)
    open_page(browser, stack.base_url, api_key.key, "#/experiments")
    wait_until(browser, lambda d: by_testid(d, "new-experiment"), what="the new experiment link")
    by_testid(browser, "new-experiment")[0].click()
    form = wait_until(browser, lambda d: by_testid(d, "experiment-form"), what="the form")[0]
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("css selector", '[name="dataset_id"]')).select_by_value(dataset["id"])
    Select(browser.find_element("css selector", '[name="strategy"]')).select_by_value("random")
    Select(browser.find_element("css selector", '[name="objective.metric"]')).select_by_value("balanced_accuracy")
    Select(browser.find_element("css selector", '[name="objective.mode"]')).select_by_value("pareto")
    Select(browser.find_element("css selector", '[name="objective.minimize"]')).select_by_value("latency_ms,params")
    browser.execute_script("document.querySelector('[data-testid=advanced]').open = true")
    fill(browser, {"name": "from the form", "budget.max_trials": "1", "budget.epochs_per_trial": "1",
                   "budget.max_minutes": "5", "objective.constraints.max_params": "500000",
                   "search_space": json.dumps(TINY_SPACE), "strategy_settings": "{}", "seed": "7"})
    browser.find_element("css selector", '[name="auto_model"]').click()  # no final model: the test stays short
    browser.find_element("css selector", '[name="search_space_beyond"]').click()  # TINY_SPACE: 1 stage, batch 16
    browser.execute_script("window.scrollTo(0, 0)")
    save_screenshot(browser, "form")
    by_testid(form, "experiment-submit")[0].click()

    wait_until(browser, lambda d: d.execute_script("return location.hash").startswith("#/experiments/")
               and by_testid(d, "experiment-header") and read(d, "#exp-name"), what="the experiment page")
    [experiment] = client.get("/v1/experiments").json()["data"]
    assert browser.execute_script("return location.hash") == f"#/experiments/{experiment['id']}"
    assert read(browser, "#exp-name") == ["from the form"]
    assert experiment["strategy"] == "random" and experiment["dataset_id"] == dataset["id"]
    assert experiment["budget"]["max_trials"] == 1 and experiment["budget"]["epochs_per_trial"] == 1
    assert experiment["budget"]["max_minutes"] == 5
    assert experiment["objective"]["metric"] == "balanced_accuracy"
    assert experiment["objective"]["mode"] == "pareto"
    assert experiment["objective"]["minimize"] == ["latency_ms", "params"]
    assert experiment["objective"]["constraints"]["max_params"] == 500000
    assert experiment["seed"] == 7 and experiment["auto_model"] is False
    assert wait_for_status(client, experiment["id"], TERMINAL)["status"] == "succeeded"
    wait_until(browser, lambda d: read(d, "[data-testid=experiment-status]", "data-status") == ["succeeded"],
               what="succeeded in the page")
    # The search's metric picks the curve shown.
    assert browser.execute_script("return document.querySelector('[data-testid=curve-metric]').value") \
        == "balanced_accuracy"
    assert not read(browser, "[data-testid=page-error]")


def test_a_bad_form_shows_its_errors_and_creates_nothing(stack, client, api_key, browser):
    dataset = ready_dataset(client)
    open_page(browser, stack.base_url, api_key.key, f"#/experiments/new/{dataset['id']}")
    form = wait_until(browser, lambda d: by_testid(d, "experiment-form"), what="the form")[0]
    assert browser.execute_script("return document.querySelector('[name=dataset_id]').value") == dataset["id"]

    # Advanced JSON is checked in the page: nothing is sent, the box opens and says why.
    fill(browser, {"budget.max_trials": "1", "budget.epochs_per_trial": "1"})
    browser.execute_script("document.querySelector('[data-testid=advanced]').open = true")
    fill(browser, {"search_space": '{"kernel": [3, 5]', "pruner": '["median"]'})
    by_testid(form, "experiment-submit")[0].click()
    errors = wait_until(browser, lambda d: field_errors(d), what="field errors")
    assert set(errors) == {"search_space", "pruner"}
    assert errors["search_space"].startswith("is not valid JSON") and errors["pruner"] == "must be a JSON object: {…}"
    assert "Nothing was sent: 2 fields need fixing." in read(browser, "[data-testid=form-error]")[0]
    assert browser.execute_script("return document.activeElement.name") == "search_space"

    # Values out of range go to the server; its 422 lands next to each field it names.
    fill(browser, {"search_space": '{"kernel": [3, 5]}', "pruner": '{"kind": "median"}', "budget.max_trials": "0",
                   "objective.constraints.max_latency_ms": "-2"})
    by_testid(form, "experiment-submit")[0].click()
    wait_until(browser, lambda d: "HTTP 422" in (read(d, "[data-testid=form-problem]") or [""])[0], what="the 422")
    errors = field_errors(browser)
    assert set(errors) == {"budget.max_trials", "objective.constraints.max_latency_ms"}, errors
    assert "greater than or equal to 1" in errors["budget.max_trials"]
    assert "greater than 0" in errors["objective.constraints.max_latency_ms"]
    assert read(browser, "[name='budget.max_trials'][aria-invalid=true]")
    assert len(read(browser, "[data-testid=form-error-items] li")) == 2
    assert browser.execute_script("return location.hash") == f"#/experiments/new/{dataset['id']}"
    assert client.get("/v1/experiments").json()["total"] == 0
    save_screenshot(browser, "form-errors")


def test_selected_trials_are_compared_in_one_chart(stack, client, api_key, browser):
    dataset = ready_dataset(client)
    experiment = client.post("/v1/experiments", json=experiment_body(
        dataset["id"], strategy="random", budget={"max_trials": 3, "epochs_per_trial": 2},
        pruner={"kind": "none"})).json()
    assert wait_for_status(client, experiment["id"], TERMINAL)["status"] == "succeeded"
    trials = client.get(f"/v1/experiments/{experiment['id']}/trials").json()["data"]
    curved = sorted(t["number"] for t in trials if len(t["epochs"]) == 2)
    assert len(curved) >= 2, trials

    open_page(browser, stack.base_url, api_key.key, f"#/experiments/{experiment['id']}")
    # The best trial is shown by default; Clear empties the chart, then each ticked trial adds one line.
    wait_until(browser, lambda d: len(read(d, "[data-testid=curve-accuracy] [data-testid=series]")) == 1,
               what="the default curve")
    by_testid(browser, "curves-clear")[0].click()
    assert not read(browser, "[data-testid=curve-accuracy]")
    for number in curved:
        tick(browser, number)
    names = [f"#{number}" for number in curved]
    assert read(browser, "[data-testid=curve-accuracy] [data-testid=series]", "data-series") == names
    assert read(browser, "[data-testid=curve-accuracy-legend] li") == names
    # Each line joins both epochs of its trial; the loss chart has a validation and a training line per trial.
    paths = read(browser, "[data-testid=curve-accuracy] [data-testid=series] path", "d")
    assert len(paths) == len(curved) and all(path.count("L") == 1 for path in paths)
    assert read(browser, "[data-testid=curve-loss] [data-testid=series]", "data-series") == [
        f"{name} {kind}" for name in names for kind in ("val", "train")]
    # Unticking a trial removes its line.
    tick(browser, curved[0])
    assert read(browser, "[data-testid=curve-accuracy] [data-testid=series]", "data-series") == names[1:]
    assert not read(browser, "[data-testid=page-error]")
    save_screenshot(browser, "curves")


def test_the_search_space_is_checked_against_the_served_space(stack, client, api_key, browser):
    dataset = ready_dataset(client)
    open_page(browser, stack.base_url, api_key.key, f"#/experiments/new/{dataset['id']}")
    form = wait_until(browser, lambda d: by_testid(d, "experiment-form"), what="the form")[0]
    fill(browser, {"budget.max_trials": "1", "budget.epochs_per_trial": "1"})
    browser.execute_script("document.querySelector('[data-testid=advanced]').open = true")

    # Unknown keys, wrong types and values outside a dimension's domain are caught here: nothing is sent.
    fill(browser, {"search_space": json.dumps({"kernel": [3, 4], "op": "transformer", "colour": 1, "depth": "two",
                                               "stage9/width": 16, "train/lr": {"low": 1e-3, "high": 1.0}})})
    by_testid(form, "experiment-submit")[0].click()
    errors = wait_until(browser, lambda d: field_errors(d), what="field errors")
    assert set(errors) == {"search_space"}, errors
    message = errors["search_space"]
    for expected in ("kernel: 4 is outside the domain: one of [3,5]", 'op: "transformer" is outside the domain',
                     "colour: unknown search-space dimension", 'depth: "two" must be an integer',
                     "stage9/width: no such stage", "train/lr: [0.001, 1] is outside the domain"):
        assert expected in message, message
    assert "Nothing was sent: one field needs fixing." in read(browser, "[data-testid=form-error]")[0]
    assert browser.execute_script("return document.activeElement.name") == "search_space"

    # Beyond the default domains, on request, a value goes to the server, whose hard limits refuse an even kernel.
    fill(browser, {"search_space": '{"kernel": [3, 4]}'})
    browser.find_element("css selector", '[name="search_space_beyond"]').click()
    by_testid(form, "experiment-submit")[0].click()
    wait_until(browser, lambda d: "HTTP 422" in (read(d, "[data-testid=form-problem]") or [""])[0], what="the 422")
    assert "kernel: 4 must be odd" in field_errors(browser)["search_space"]
    assert client.get("/v1/experiments").json()["total"] == 0
    save_screenshot(browser, "space-errors")


def test_experiments_are_compared_by_their_best_so_far(stack, client, api_key, browser):
    dataset = ready_dataset(client)
    ids = []
    for name, strategy in (("random search", "random"), ("evolution search", "evolution")):
        ids.append(client.post("/v1/experiments", json=experiment_body(
            dataset["id"], name=name, strategy=strategy, budget={"max_trials": 2, "epochs_per_trial": 1})).json()["id"])
    for experiment_id in ids:
        assert wait_for_status(client, experiment_id, TERMINAL)["status"] == "succeeded"

    open_page(browser, stack.base_url, api_key.key, "#/experiments")
    wait_until(browser, lambda d: len(by_testid(d, "experiment-select")) == 2, what="two selection boxes")
    assert by_testid(browser, "compare-selected")[0].get_attribute("disabled") is not None
    for box in by_testid(browser, "experiment-select"):
        box.click()
    by_testid(browser, "compare-selected")[0].click()
    wait_until(browser, lambda d: len(read(d, "[data-testid=compare-chart] [data-testid=series]")) == 2,
               what="two lines")
    assert sorted(browser.execute_script("return location.hash").removeprefix("#/compare/").split(",")) == sorted(ids)
    names = {"random search", "evolution search"}
    assert set(read(browser, "[data-testid=compare-chart] [data-testid=series]", "data-series")) == names
    assert set(read(browser, "[data-testid=compare-chart-legend] li")) == names
    # Against trials finished, each line ends at its experiment's best.
    for experiment_id in ids:
        best = client.get(f"/v1/experiments/{experiment_id}").json()["best"]["val_accuracy"]
        assert read(browser, f'[data-testid=compare-row][data-id="{experiment_id}"] [data-testid=compare-best]') == [
            f"{best * 100:.2f}%"]
    from selenium.webdriver.support.ui import Select

    Select(by_testid(browser, "compare-axis")[0]).select_by_value("minutes")
    wait_until(browser, lambda d: "minutes" in (read(d, "[data-testid=compare-chart] .label") or [""])[0],
               what="the minutes axis")
    assert len(read(browser, "[data-testid=compare-chart] [data-testid=series]")) == 2
    assert not read(browser, "[data-testid=page-error]")
    save_screenshot(browser, "compare")


def test_an_upload_becomes_a_downloadable_model(stack, client, api_key, browser, tmp_path):
    """The whole way in the browser: archive → ready dataset → search with a final model → ONNX download link."""
    started = time.monotonic()
    archive = tmp_path / "shapes.zip"
    archive.write_bytes(archives.make_image_folder_zip(classes={"ring": 12, "dot": 12}, size=(16, 16)))
    open_page(browser, stack.base_url, api_key.key, "#/datasets")
    wait_until(browser, lambda d: by_testid(d, "dataset-drop-zone"), what="the drop zone")
    by_testid(browser, "upload-input")[0].send_keys(str(archive))
    link = wait_until(browser, lambda d: by_testid(d, "upload-start-experiment"), timeout_s=60, what="dataset ready")
    link[0].click()

    form = wait_until(browser, lambda d: by_testid(d, "experiment-form"), what="the form")[0]
    [dataset] = client.get("/v1/datasets").json()["data"]
    assert browser.execute_script("return document.querySelector('[name=dataset_id]').value") == dataset["id"]
    browser.execute_script("document.querySelector('[data-testid=advanced]').open = true")
    fill(browser, {"name": "upload to model", "budget.max_trials": "1", "budget.epochs_per_trial": "1",
                   "search_space": json.dumps(TINY_SPACE), "seed": "7"})
    browser.find_element("css selector", '[name="search_space_beyond"]').click()
    assert browser.find_element("css selector", '[name="auto_model"]').is_selected()
    by_testid(form, "experiment-submit")[0].click()
    wait_until(browser, lambda d: read(d, "#exp-name") == ["upload to model"], what="the experiment page")
    wait_until(browser, lambda d: read(d, "[data-testid=experiment-status]", "data-status") == ["succeeded"],
               timeout_s=120, what="the search succeeded")

    browser.find_element("css selector", "[data-testid=nav-models]").click()
    wait_until(browser, lambda d: read(d, "[data-testid=model-status]", "data-status") == ["ready"],
               timeout_s=180, what="the final model ready")
    by_testid(browser, "model-link")[0].click()
    wait_until(browser, lambda d: by_testid(d, "download-onnx"), what="the ONNX download")
    [model] = client.get("/v1/models").json()["data"]
    assert model["status"] == "ready" and "onnx" in {a["format"] for a in model["artifacts"]}
    # The button's download, as the page fetches it (with the key, streamed by the API): the artifact the API lists.
    name, onnx_bytes = capture_download(browser, "download-onnx")
    [artifact] = [a for a in model["artifacts"] if a["format"] == "onnx"]
    assert name == "model.onnx" and len(onnx_bytes) == artifact["size"]
    assert hashlib.sha256(onnx_bytes).hexdigest() == artifact["sha256"]
    import onnx

    graph = onnx.load_from_string(onnx_bytes)
    onnx.checker.check_model(graph)
    assert graph.graph.input and graph.graph.output
    assert not read(browser, "[data-testid=page-error]")
    print(f"upload to a downloadable model: {time.monotonic() - started:.1f}s")
    save_screenshot(browser, "upload-to-model")


def test_trials_are_stopped_from_the_trial_table(stack, client, api_key, browser):
    """Stop on a pending trial ends it at once, never started; on a running one it shows "stopping…" until the
    trainer notices, then the trial ends stopped with the epochs it trained."""
    dataset = ready_dataset(client)
    # Two trials at once on the stack's one trial worker: the first trains (long), the second waits pending.
    experiment = client.post("/v1/experiments", json=experiment_body(
        dataset["id"], strategy="random", concurrency=2, pruner={"kind": "none"},
        budget={"max_trials": 2, "epochs_per_trial": 300})).json()
    try:
        wait_for_a_trained_epoch(client, experiment["id"], timeout_s=120)
        trials = {t["status"]: t["number"] for t in all_trials(client, experiment["id"])}
        assert set(trials) == {"running", "pending"}, trials
        running, pending = trials["running"], trials["pending"]

        open_page(browser, stack.base_url, api_key.key, f"#/experiments/{experiment['id']}")
        wait_until(browser, lambda d: row_status(d, running) == ["running"] and row_status(d, pending) == ["pending"],
                   what="a running and a pending trial")
        record_stopping(browser)

        stop_trial(browser, pending)
        wait_until(browser, lambda d: row_status(d, pending) == ["stopped"], what="the pending trial stopped")
        never = next(t for t in all_trials(client, experiment["id"]) if t["number"] == pending)
        assert never["status"] == "stopped" and never["attempts"] == 0 and never["started_at"] is None, never
        assert not read(browser, f'[data-testid=trial-row][data-number="{pending}"] button')  # nothing left to stop

        stop_trial(browser, running)
        wait_until(browser, lambda d: row_status(d, running) == ["stopped"], timeout_s=60,
                   what="the running trial stopped")
        stopped = next(t for t in all_trials(client, experiment["id"]) if t["number"] == running)
        assert stopped["status"] == "stopped" and 1 <= len(stopped["epochs"]) < 300, stopped
        assert browser.execute_script("return window.nasStopping") == [pending, running]

        done = wait_for_status(client, experiment["id"], TERMINAL)
        assert done["progress"]["stopped"] == 2, done
        wait_until(browser, lambda d: read(d, "[data-testid=experiment-status]", "data-status") == [done["status"]],
                   what="the search's end in the page")
        assert not read(browser, "[data-testid=page-error]")
        save_screenshot(browser, "trials-stopped")
    finally:  # the stack's one trial worker must not go on training this search for the tests after this one
        if client.get(f"/v1/experiments/{experiment['id']}").json()["status"] not in TERMINAL:
            client.post(f"/v1/experiments/{experiment['id']}/cancel")
            wait_for_status(client, experiment["id"], TERMINAL, timeout_s=60)
