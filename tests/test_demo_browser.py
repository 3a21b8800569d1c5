"""``textsep demo`` in a real headless Chromium, driven by Selenium.

The page is served by the installed console script on a free localhost
port with the tiny trained CLIPSep-Text of the test session; the browser
uploads a tuba + flute mixture, asks for the tuba, downloads the returned
sound and residual, and checks them against the sources; then an
unreadable file and an empty query show their errors on the page, and a
good request (another format and rate) still works. Screenshots are saved
under pytest's ``tmp_path`` (and copied to ``$TEXTSEP_ARTIFACTS`` when set).

Needs Debian's ``chromium`` and ``chromium-driver`` (``make system-deps``).
"""

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import soundfile as sf
import torch

from speechbrain_textsep.evaluation.metrics import si_sdr
from speechbrain_textsep.evaluation.mixtures import load_centre_segment, read_manifest
from speechbrain_textsep.processing.audio_io import resample
from speechbrain_textsep.processing.mixing import mix_at_snr

pytestmark = pytest.mark.integration

TEXTSEP = os.path.join(os.path.dirname(sys.executable), "textsep")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Longest wait for the server, a page element or a request (seconds).
WAIT = 60


def free_port():
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_demo(model, work, port):
    """``textsep demo`` in a subprocess; returns it once the page answers."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_TEMP_DIR": os.path.join(work, "gradio"),
    }
    log = open(os.path.join(work, "server.log"), "w")
    args = [TEXTSEP, "demo", "--model", model, "--port", str(port)]
    args += ["--examples-dir", os.path.join(work, "examples"), "--examples", "2"]
    args += ["--max-seconds", "30"]
    server = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 2 * WAIT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
                return server
        except OSError:
            time.sleep(0.5)
    stop(server)
    with open(os.path.join(work, "server.log")) as f:
        pytest.fail(f"textsep demo did not serve the page:\n{f.read()[-3000:]}")


def stop(server):
    """Stops the server (terminate, then kill after 15 s)."""
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=15)


def open_browser():
    """Headless Chromium (Debian's) with its driver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1400,1700")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    return driver


class Page:
    """The demo page in the browser: upload, type, run, read the outputs."""

    def __init__(self, driver, url, shots):
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver, self.shots = driver, shots
        self.wait = WebDriverWait(driver, WAIT)
        driver.get(url)
        self.find("#recording input[type=file]")

    def find(self, selector):
        from selenium.webdriver.common.by import By

        return self.wait.until(
            lambda d: d.find_elements(By.CSS_SELECTOR, selector),
            f"no {selector} on the page",
        )[0]

    def text(self):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.TAG_NAME, "body").text

    def upload(self, path):
        from selenium.webdriver.common.by import By

        for button in self.driver.find_elements(
            By.CSS_SELECTOR, "#recording button[aria-label='Clear']"
        ):
            button.click()
        self.find("#recording input[type=file]").send_keys(path)
        name = os.path.basename(path)
        self.wait.until(
            lambda d: d.execute_script(
                "const name = arguments[0];"
                "return [...document.querySelectorAll('#recording a')]"
                ".some(a => decodeURIComponent(a.href).endsWith('/' + name))",
                name,
            ),
            f"{name} was not uploaded",
        )

    def query(self, text):
        from selenium.webdriver.common.keys import Keys

        box = self.find("#query textarea")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.BACKSPACE)
        if text:
            box.send_keys(text)

    def run_until(self, expected, shot):
        """Presses Separate; waits until the page says ``expected``."""
        self.find("#separate").click()
        self.wait.until(lambda d: expected in self.text(), f"no '{expected}'")
        time.sleep(0.5)  # let the players draw, for the screenshot
        path = os.path.join(self.shots, shot)
        self.driver.save_screenshot(path)
        return path

    def output(self, elem_id):
        """The audio of an output, downloaded through its download link."""
        url = self.find(f"#{elem_id} a.download-link").get_attribute("href")
        with urllib.request.urlopen(url, timeout=WAIT) as response:
            audio, rate = sf.read(io.BytesIO(response.read()), dtype="float32")
        return torch.from_numpy(audio), rate, os.path.basename(url)


def write_mixture(data_folder, index, path, rate, stereo):
    """A 0 dB tuba + flute test mixture at ``rate``; returns it and the sources."""
    clips = read_manifest(os.path.join(data_folder, "test.csv"))
    sources = [
        load_centre_segment(clips[f"{name}_test_{index}"], 32000, 16000)
        for name in ("tuba", "flute")
    ]
    mixture, tuba, flute = (resample(x, 16000, rate) for x in mix_at_snr(*sources))
    channels = [mixture, 0.8 * mixture] if stereo else [mixture]
    sf.write(path, torch.stack(channels, 1).numpy(), rate)
    return {"mixture": mixture, "tuba": tuba, "flute": flute}


def scores(returned, reference, mixture):
    """SI-SDR (dB) of an output and of the mixture, to the same reference."""
    return si_sdr(returned, reference).item(), si_sdr(mixture, reference).item()


@pytest.fixture
def served(trained, tmp_path):
    """The demo of the tiny trained model, and a headless browser on it."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        # `make test` installs them (system-deps): in CI a missing browser is
        # a failure, not a skip; a hand-run pytest without them skips.
        missing = "needs chromium and chromium-driver (make system-deps)"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    port = free_port()
    server = start_demo(os.path.join(trained, "model"), str(tmp_path), port)
    driver = None
    try:
        driver = open_browser()
        yield driver, f"http://127.0.0.1:{port}/"
    finally:
        if driver is not None:
            driver.quit()
        stop(server)


def test_the_page_separates_and_survives_bad_input(served, data_folder, tmp_path):
    driver, url = served
    shots = str(tmp_path / "screenshots")
    os.makedirs(shots)
    start = time.monotonic()
    page = Page(driver, url, shots)
    assert "This model takes text and images as queries" in page.text()
    assert "mix_00000_" in page.text()  # the bundled examples

    song = str(tmp_path / "tuba_and_flute.wav")
    sources = write_mixture(data_folder, "0000", song, 44100, stereo=True)
    page.upload(song)
    page.query("tuba")
    page.run_until("Separated 'tuba' from tuba_and_flute.wav", "1_separated.png")
    estimate, rate, name = page.output("estimate")
    residual, residual_rate, residual_name = page.output("residual")
    assert (name, residual_name) == (
        "tuba_and_flute_tuba.wav",
        "tuba_and_flute_without_tuba.wav",
    )
    assert rate == residual_rate == 44100
    assert estimate.shape == residual.shape == sources["mixture"].shape
    figures = {
        "seconds": len(estimate) / rate,
        "tuba": scores(estimate, sources["tuba"], sources["mixture"]),
        "flute_residual": scores(residual, sources["flute"], sources["mixture"]),
    }
    assert figures["tuba"][0] > figures["tuba"][1] + 3
    assert figures["flute_residual"][0] > figures["flute_residual"][1] + 3

    broken = str(tmp_path / "broken.wav")
    with open(broken, "wb") as f:
        f.write(b"RIFF\x00\x00 not audio")
    page.upload(broken)
    page.run_until("cannot read audio file broken.wav", "2_unreadable.png")

    other = str(tmp_path / "another_song.flac")
    sources = write_mixture(data_folder, "0001", other, 22050, stereo=False)
    page.upload(other)
    page.query("")
    page.run_until("the query is empty", "3_empty_query.png")
    page.query("tuba")
    page.run_until("Separated 'tuba' from another_song.flac", "4_after_errors.png")
    estimate, rate, _ = page.output("estimate")
    assert rate == 22050 and estimate.shape == sources["mixture"].shape
    figures["tuba_after_errors"] = scores(estimate, sources["tuba"], sources["mixture"])
    assert figures["tuba_after_errors"][0] > figures["tuba_after_errors"][1] + 3
    figures["browser_seconds"] = time.monotonic() - start
    print(json.dumps(figures))
    with open(os.path.join(shots, "figures.json"), "w") as f:
        json.dump(figures, f, indent=2)
    if os.environ.get("TEXTSEP_ARTIFACTS"):
        target = os.path.join(os.environ["TEXTSEP_ARTIFACTS"], "demo_browser")
        shutil.copytree(shots, target, dirs_exist_ok=True)
