"""The model page's drop zone, in headless Chromium: chosen or dropped images are classified by the API and shown
with their classes; what was wrong with a bad image is shown in place."""

from __future__ import annotations

import pytest

from tests import archives
from tests.service.helpers import add_model, by_testid, read, sign_in, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.stack, pytest.mark.parametrize("stack", ["postgres"], indirect=True)]


def test_the_model_page_classifies_chosen_and_dropped_images(stack, client, api_key, browser, tmp_path):
    model_id = add_model(stack, api_key.project_id)
    paths = [tmp_path / "wide.png", tmp_path / "photo.jpg"]
    paths[0].write_bytes(archives.image_bytes(size=(30, 9), seed=1))
    paths[1].write_bytes(archives.image_bytes(size=(12, 16), fmt="JPEG", seed=2))
    expected = client.post(f"/v1/models/{model_id}/predict",
                           files=[("images", (path.name, path.read_bytes())) for path in paths]).json()

    sign_in(browser, stack.base_url, api_key.key)
    browser.get(f"{stack.base_url}/#/models/{model_id}")
    wait_until(browser, lambda d: by_testid(d, "drop-zone"), what="the drop zone")
    by_testid(browser, "predict-input")[0].send_keys("\n".join(str(path) for path in paths))
    wait_until(browser, lambda d: len(read(d, "[data-testid=prediction]")) == 2, what="two predictions")
    assert read(browser, "[data-testid=predicted-class]") == [
        item["class"] for entry in expected["data"] for item in entry["top"]]
    assert read(browser, "[data-testid=predicted-probability]") == [
        f"{item['probability'] * 100:.2f}%" for entry in expected["data"] for item in entry["top"]]
    assert "in onnxruntime" in read(browser, "[data-testid=predict-latency]")[0]

    # A drop hands the page files the same way; a file that is no image comes back as a named error.
    browser.execute_script("""
        const files = new DataTransfer();
        files.items.add(new File([new TextEncoder().encode("no pixels here")], "notes.png", {type: "image/png"}));
        document.querySelector("[data-testid=drop-zone]").dispatchEvent(
            new DragEvent("drop", {dataTransfer: files, bubbles: true, cancelable: true}));""")
    error = wait_until(browser, lambda d: read(d, "[data-testid=predict-error]"), what="the error")
    assert error == ["1 of 1 images cannot be used"]
    assert "notes.png: not an image" in read(browser, "[data-testid=predict-result] ul.errors li")[0]
    assert not read(browser, "[data-testid=prediction]")
