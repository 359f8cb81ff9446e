"""A person at the Airflow UI, in a real headless Chromium (Debian's ``chromium``, driven by
Playwright): log in, open the pending approval of a run, click an option."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"]


def chromium_path() -> str:
    for candidate in (os.environ.get("MLCYCLE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (found := shutil.which(candidate)):
            return found
    raise RuntimeError("no Chromium found: install Debian's chromium (apt-get install chromium)")


@contextmanager
def browser_page(timeout_ms: float = 60_000):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(timeout_ms)
            yield page
        finally:
            browser.close()


def log_in(page, base_url: str, user: str, password: str) -> None:
    """Airflow's login form (simple auth manager), as a person fills it in."""
    page.goto(f"{base_url}/", wait_until="networkidle")
    page.wait_for_url("**/auth/login**")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)


def answer_in_ui(
    page, base_url: str, subject: str, option: str, comment: str | None = None, run_id: str | None = None
) -> str:
    """Find the approval titled ``subject`` on the UI's "Required Actions" page (of the run
    ``run_id`` when given: approvals of the same question may be listed from earlier runs), open
    it, write the comment, click ``option``, and wait until the UI shows the answer. Returns the
    text of the approval as the person saw it (subject and evidence)."""
    from urllib.parse import quote

    from playwright.sync_api import expect

    page.goto(f"{base_url}/required_actions", wait_until="networkidle")
    links = page.get_by_role("link", name=subject, exact=True)
    links.first.wait_for(state="visible")
    if run_id is None:
        link = links.first
    else:
        forms = {run_id, quote(run_id, safe=""), quote(run_id)}
        hrefs = [links.nth(i).get_attribute("href") or "" for i in range(links.count())]
        chosen = [i for i, href in enumerate(hrefs) if any(form in href for form in forms)]
        assert chosen, f"no required action of run {run_id} titled {subject!r}; links: {hrefs}"
        link = links.nth(chosen[0])
    link.click()
    button = page.get_by_role("button", name=option, exact=True)
    button.wait_for(state="visible")
    expect(button).to_be_enabled()
    seen = page.inner_text("body")
    if comment is not None:
        page.locator("[name=element_comment]").fill(comment)  # the form field of the "comment" param
    button.click()
    expect(button).to_be_disabled()  # the answer is in: the form no longer takes one
    return seen
