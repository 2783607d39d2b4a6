"""A real headless Chromium for the admin tests: Debian's chromium and chromium-driver, driven by Selenium.

No browser is downloaded: Selenium is given the system's chromedriver and chromium (LMS_CHROMEDRIVER /
LMS_CHROMIUM override them). `unavailable()` says why the browser cannot run here, so the tests can be
skipped with that reason. Screenshots and failure captures go to `artefacts_dir()`: LMS_TEST_ARTEFACTS,
else var/test-artefacts (git-ignored, beside var/test-reports).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import tempfile
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALL_HINT = "apt-get install chromium chromium-driver (manage_all.py test and .ci/run do it as root)"
# Without the background-networking flags Chromium keeps retrying refused connections and can hang.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1366,900",
]
WAIT_SECONDS = 20.0
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")

SAVED: list[Path] = []  # artefacts written in this run, listed at the end by conftest


def chromium_path() -> str | None:
    return shutil.which(os.environ.get("LMS_CHROMIUM") or "chromium") or shutil.which("chromium-browser")


def chromedriver_path() -> str | None:
    return shutil.which(os.environ.get("LMS_CHROMEDRIVER") or "chromedriver")


def unavailable() -> str | None:
    """Why no browser test can run on this machine, or None when they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the Python package selenium is not installed (requirements/dev.txt)"
    found = {"chromium": chromium_path(), "chromedriver": chromedriver_path()}
    missing = [name for name, path in found.items() if not path]
    if missing:
        return f"{' and '.join(missing)} not found: {INSTALL_HINT}"
    return None


def artefacts_dir() -> Path:
    path = Path(os.environ.get("LMS_TEST_ARTEFACTS") or ROOT / "var" / "test-artefacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def number(text: str) -> Decimal:
    """The first number in a figure's text, leniently: "9,170.55", "9170.55", "₹ 9,170.55", "12 loans", "3.5%"."""
    found = NUMBER.search(text or "")
    if found is None:
        raise AssertionError(f"no number in {text!r}")
    return Decimal(found.group().replace(",", ""))


class Browser:
    """One Chromium with a fresh profile; explicit waits only."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="lms-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium_path()
        for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={self.profile}"]:
            options.add_argument(flag)
        self.service = Service(executable_path=chromedriver_path())
        try:
            self.driver = webdriver.Chrome(service=self.service, options=options)  # stops its driver if it fails
        except Exception:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        self.driver.set_page_load_timeout(WAIT_SECONDS)

    # ------------------------------------------------------------------ lifetime

    def quit(self) -> None:
        """Quit the browser and its driver; then end any process of this profile still alive (by its pid)."""
        with contextlib.suppress(Exception):
            self.driver.quit()
        for pid in self._profile_processes():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.profile, ignore_errors=True)

    def _profile_processes(self) -> list[int]:
        pids = []
        for entry in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                if self.profile.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
        return pids

    def forget_sessions(self) -> None:
        """Sign out of every admin: drop all cookies (the admins share the host 127.0.0.1)."""
        self.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})

    # ------------------------------------------------------------------ pages

    def until(self, condition, what: str, *, timeout: float = WAIT_SECONDS):
        """Wait until `condition(driver)` is truthy and return it; an AssertionError naming `what` after `timeout`."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout).until(condition)
        except TimeoutException:
            raise AssertionError(f"{what} on {self.driver.current_url} after {timeout:g}s") from None

    def open(self, url: str) -> None:
        self.driver.get(url)

    def element(self, css: str, *, timeout: float = WAIT_SECONDS):
        """The first element matching `css`, once it is visible."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)), f"no {css}", timeout=timeout)

    def elements(self, css: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def follow(self, element) -> None:
        """Click `element` and wait until the next page has replaced this one."""
        from selenium.webdriver.common.by import By

        page = self.driver.find_element(By.TAG_NAME, "html")
        element.click()
        self.until(lambda driver: _detached(page), "the page did not change")
        self.until(lambda driver: driver.execute_script("return document.readyState") == "complete", "no page loaded")

    def follow_link(self, text: str) -> None:
        """Click the link whose text is `text` in the page's source (the admin's CSS upper-cases some)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        assert "'" not in text, text
        link = (By.XPATH, f"//a[normalize-space()='{text}']")
        self.follow(self.until(ec.element_to_be_clickable(link), f"no link {text!r}"))

    def texts(self, css: str) -> list[str]:
        """The source text of each element matching `css` (not its rendering, which CSS may upper-case)."""
        return [" ".join((element.get_attribute("textContent") or "").split()) for element in self.elements(css)]

    def messages(self) -> list[str]:
        """The admin's messages on this page (Django's ul.messagelist)."""
        return self.texts("ul.messagelist li")

    def cookie(self, name: str) -> str | None:
        found = self.driver.get_cookie(name)
        return found["value"] if found else None

    @property
    def url(self) -> str:
        return self.driver.current_url

    # ------------------------------------------------------------------ the admin

    def submit_admin_sign_in(self, base_url: str, email: str, password: str, code: str | None = None) -> None:
        """Fill in and post an admin's login form, with the authentication code if given (its field,
        `otp_code`, is on every service's admin form); the caller checks where it led."""
        self.open(f"{base_url}/admin/login/?next=/admin/")
        self.element("#id_username").send_keys(email)
        self.element("#id_password").send_keys(password)
        if code is not None:
            self.element("#id_otp_code").send_keys(code)
        self.follow(self.element("#login-form [type=submit]"))

    def sign_in_to_admin(self, base_url: str, email: str, password: str, *, totp_secret: str | None = None) -> None:
        """Sign in and check the admin index opened; with `totp_secret`, a code user_service has not seen yet."""
        from tests.actors import totp_code

        code = totp_code(totp_secret) if totp_secret else None  # taken last: a fresh code, just before posting
        self.submit_admin_sign_in(base_url, email, password, code)
        errors = [note.text for note in self.elements(".errornote")]
        assert not errors, f"sign-in to {base_url}/admin/ refused: {errors}"
        self.element("#user-tools")  # the signed-in admin's header
        assert self.url.rstrip("/").endswith("/admin"), self.url

    def search_changelist(self, url: str, term: str) -> None:
        """Open a changelist and search it through its search box."""
        self.open(url)
        box = self.element("#searchbar")
        box.clear()
        box.send_keys(str(term))
        self.follow(self.element("#changelist-search [type=submit]"))

    def run_action(self, object_id: int, action: str) -> list[str]:
        """Select one row of the changelist, run an admin action on it; the messages it gave."""
        from selenium.webdriver.support.ui import Select

        self.element(f'input.action-select[value="{object_id}"]').click()
        Select(self.element("select[name=action]")).select_by_value(action)
        self.follow(self.element("#changelist-form button[name=index]"))
        return self.messages()

    # ------------------------------------------------------------------ artefacts

    def screenshot(self, name: str) -> Path:
        """A full-page PNG (beyond the window's height) under artefacts_dir()."""
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
        path = artefacts_dir() / name
        path.write_bytes(base64.b64decode(shot["data"]))
        SAVED.append(path)
        return path

    def keep_failure(self, name: str) -> None:
        """The page a failed test ended on: its screenshot and HTML, for the post-mortem."""
        with contextlib.suppress(Exception):
            html = artefacts_dir() / f"{name}.html"
            html.write_text(self.driver.page_source)
            SAVED.append(html)
            self.screenshot(f"{name}.png")


def _detached(element) -> bool:
    """True once `element` is no longer in the page: Selenium's staleness_of, plus the form in which
    chromedriver sometimes reports it mid-navigation ("Node with given id does not belong to the document")."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" in str(error):
            return True
        raise
    return False
