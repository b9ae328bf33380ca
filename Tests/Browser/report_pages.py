"""Kaizen's pages in a real headless Chromium (driven by GatewayTests/BrowserTests.swift).

Signs in through the form, opens the run report the CLI printed, checks the regression section and
the escaping of test-supplied text, filters to failed cases, opens a case with its step tree and an
inline image, signs out. Fails on any JavaScript console error. Saves a screenshot of every page.

Then the rest of the product a person uses: a case across runs (linking and filing defects), flaky
tests and their policy, failure clusters filed as defects, the overview, workspace settings (a token
shown once and then used in the API reference's "try it", an invitation accepted from its link in a
fresh session), the audit log; every page at phone width.

usage: report_pages.py BASE_URL EMAIL PASSWORD REPORT_URL SCREENSHOT_DIR [OPEN_RUN_URL]
"""
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.support.ui import WebDriverWait

base, email, password, report_url, shots = sys.argv[1:6]
# A sharded run still waiting for shards, when given.
open_run_url = sys.argv[6] if len(sys.argv) > 6 else None
os.makedirs(shots, exist_ok=True)

options = Options()
for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"):
    options.add_argument(flag)
options.binary_location = "/usr/bin/chromium"
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
driver.set_page_load_timeout(120)
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def wait_for(condition, message, seconds=60):
    """Waits on a condition with a deadline (a click's navigation finishes when it finishes)."""
    try:
        # A page replaced mid-check (the navigation finished meanwhile) is asked again, not a failure.
        WebDriverWait(driver, seconds, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(
            lambda d: condition())
    except Exception:
        failures.append(message)


def shot(name):
    driver.save_screenshot(os.path.join(shots, name + ".png"))
    # A missing value must never render as a Swift or Foundation placeholder.
    text = driver.find_element(By.TAG_NAME, "body").text
    for placeholder in ("Optional(", "<null>", " nil ", ": nil", "(null)"):
        if placeholder in text:
            failures.append(f"{name} shows '{placeholder}'")
    for entry in driver.get_log("browser"):
        # A console error on any page fails the run (CSP violations included).
        if entry.get("level") == "SEVERE":
            failures.append(f"console error on {name}: {entry.get('message')}")


try:
    # An anonymous visitor is sent to sign in, then back to the report.
    driver.get(report_url)
    check("/login" in driver.current_url, f"anonymous visitor not sent to sign in: {driver.current_url}")
    shot("01-sign-in")
    driver.find_element(By.NAME, "email").send_keys(email)
    driver.find_element(By.NAME, "password").send_keys("not the password")
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".alert"), "no answer to a wrong password")
    alerts = driver.find_elements(By.CSS_SELECTOR, ".alert")
    check(alerts and "incorrect" in alerts[0].text, "a wrong password is not reported: " + driver.page_source[:1500])
    shot("01b-wrong-password")
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(lambda: driver.current_url == report_url, f"not back on the report after signing in: {driver.current_url}")
    shot("02-run-report")

    # The gate's verdict: failed on maxFailures, the quarantined case forgiven — its name and reason as text.
    gate = driver.find_element(By.ID, "gate")
    check("Quality gate: ✘ failed" in gate.text, f"no failed gate on the report: {gate.text}")
    check("maxFailures 1 (limit 0)" in gate.text, f"the failing rule is not shown with its figure: {gate.text}")
    check("<script>window.__kaizen_xss=1</script>" in gate.text and "flaky <b>upstream</b>" in gate.text,
          f"the forgiven case or its reason is not shown as text: {gate.text}")
    driver.execute_script("arguments[0].scrollIntoView()", gate)
    shot("02a-quality-gate")

    if open_run_url:
        # A sharded run still open: how many shards arrived, no verdict yet, the baseline still to choose.
        driver.get(open_run_url)
        notice = driver.find_element(By.ID, "open-run")
        check("1 of 2 shards have arrived" in notice.text, f"the open run does not say how many shards arrived: {notice.text}")
        check(not driver.find_elements(By.ID, "gate"), "an open run shows a gate verdict")
        body = driver.find_element(By.TAG_NAME, "body").text
        check("chosen when the run closes" in body, "an open run claims a baseline")
        regression = driver.find_element(By.ID, "regression")
        check("when its last shard arrives" in regression.text and "New failures" not in regression.text,
              f"an open run shows a regression: {regression.text}")
        shot("02b-open-sharded-run")
        driver.get(report_url)

    regression = driver.find_element(By.ID, "regression")
    check("New failures" in regression.text, "no new-failures bucket")
    new_failures = regression.find_elements(By.CSS_SELECTOR, "h3.bucket.new + ul li")
    names = [item.text for item in new_failures]
    check(any("<script>window.__kaizen_xss=1</script>" in name for name in names), f"the escaped name is not shown as text: {names}")
    check(any("checkout total" in name for name in names), f"new failure missing: {names}")
    scripts = [el.get_attribute("src") or "inline" for el in driver.find_elements(By.CSS_SELECTOR, "script")]
    check(scripts == [base.rstrip("/") + "/assets/kaizen.js"], f"a script other than Kaizen's own is in the page: {scripts}")
    check(driver.execute_script("return window.__kaizen_xss === undefined"), "test-supplied text ran as script")

    # Filter to failed cases (a plain GET form: works without script).
    driver.find_element(By.CSS_SELECTOR, "select[name=status] option[value=failed]").click()
    driver.find_element(By.CSS_SELECTOR, ".filters button").click()
    wait_for(lambda: "status=failed" in driver.current_url, "the filter did not apply")
    def statuses():
        return [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#cases tbody td:first-child")]
    wait_for(lambda: statuses() and all("failed" in s for s in statuses()), "the status filter shows other statuses", seconds=20)
    shot("03-failed-cases")

    # Text filter: the server narrows the list (a GET form, works without script).
    driver.find_element(By.CSS_SELECTOR, "input[name=q]").send_keys("CHECKOUT")
    driver.find_element(By.CSS_SELECTOR, ".filters button").click()
    wait_for(lambda: "q=CHECKOUT" in driver.current_url, "the text filter did not apply")
    # The address changes when the navigation commits, before the new page is read: wait on the content.
    def filtered_names():
        return [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#cases tbody td:nth-child(2) a")]
    wait_for(lambda: filtered_names() == ["checkout total"], "the text filter does not narrow the list to the one case", seconds=20)
    clusters = driver.find_element(By.ID, "failure-clusters").text
    check("expected 100, got 90" in clusters and "checkout total" in clusters, "failures are not grouped by cluster")

    # A case: step tree, error, inline image attachment, history.
    driver.find_element(By.LINK_TEXT, "checkout total").click()
    wait_for(lambda: "/cases/" in driver.current_url, "the case did not open")
    shot("04-case")
    check(len(driver.find_elements(By.CSS_SELECTOR, "details.step")) >= 1, "no step tree")
    check("expected 100" in driver.find_element(By.CSS_SELECTOR, ".error-line").text, "no error message")
    images = driver.find_elements(By.CSS_SELECTOR, ".attachments img")
    check(len(images) == 1, "no inline image attachment")
    if images:
        # Lazy images load once scrolled into view; wait for it with a deadline.
        driver.execute_script("arguments[0].scrollIntoView()", images[0])
        wait_for(lambda: driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", images[0]),
                 "the inline image did not load")
    check(len(driver.find_elements(By.CSS_SELECTOR, ".history a")) >= 2, "no history strip")
    check("feature/cart" in driver.find_element(By.TAG_NAME, "main").text, "no history strip for the other branch")
    previews = driver.find_elements(By.CSS_SELECTOR, "pre.preview")
    check(previews and "<b>total</b>" in previews[0].text and "TAIL-NOT-PREVIEWED" not in previews[0].text,
          "the log is not previewed as text up to its cap")

    # Edit the case's owner and labels (a form with the session's CSRF proof, the API's rules).
    owner = driver.find_element(By.CSS_SELECTOR, "form.annotate input[name=owner]")
    owner.clear()
    owner.send_keys("alice")
    labels = driver.find_element(By.CSS_SELECTOR, "form.annotate input[name=labels]")
    labels.clear()
    labels.send_keys("checkout, slow")
    driver.find_element(By.CSS_SELECTOR, "form.annotate button").click()
    wait_for(lambda: "#triage" in driver.current_url, "the case edit did not come back to the case")
    def field(name):
        found = driver.find_elements(By.CSS_SELECTOR, f"form.annotate input[name={name}]")
        return found[0].get_attribute("value") if found else None
    wait_for(lambda: field("owner") == "alice", "the owner was not saved", seconds=20)
    wait_for(lambda: field("labels") == "checkout, slow", "the labels were not saved", seconds=20)
    shot("04b-case-edited")

    # Times are shown in the reader's locale by the script, with UTC on hover.
    driver.get(report_url)
    times = driver.find_elements(By.CSS_SELECTOR, "time[datetime]")
    check(times and "UTC" in (times[0].get_attribute("title") or "") and times[0].text != times[0].get_attribute("datetime"),
          "times are not shown in the reader's locale with UTC on hover")

    # The case across runs: history per branch, the linked defect checked; file another from here.
    driver.get(driver.find_element(By.CSS_SELECTOR, "#cases a[href*='/cases/']").get_attribute("href"))
    driver.find_element(By.PARTIAL_LINK_TEXT, "every branch").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "form.annotate"), "the case page across runs did not open")
    check(len(driver.find_elements(By.CSS_SELECTOR, ".history a")) >= 2, "no history across runs")
    checked = driver.find_elements(By.CSS_SELECTOR, "input[name=defect]:checked")
    check(len(checked) == 1, f"the linked defect is not checked ({len(checked)})")
    driver.find_element(By.CSS_SELECTOR, "form[action$='/defects'] input[name=title]").send_keys("Cart <b>rounding</b>")
    driver.find_element(By.CSS_SELECTOR, "form[action$='/defects'] button").click()
    wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "input[name=defect]")) == 2, "the filed defect is not offered")
    check("Cart <b>rounding</b>" in driver.find_element(By.ID, "triage").text, "the new defect's title is not shown as text")
    check(len(driver.find_elements(By.CSS_SELECTOR, "input[name=defect]:checked")) == 2, "the filed defect is not linked")
    shot("04c-case-across-runs")

    # Quarantine it from its page (the reason stays text), then release it.
    def quarantine_text():
        sections = driver.find_elements(By.ID, "quarantine")
        return sections[0].text if sections else ""
    driver.find_element(By.CSS_SELECTOR, "form[action$='/quarantine'] input[name=reason]").send_keys("waiting on <i>JIRA-9</i>")
    driver.find_element(By.CSS_SELECTOR, "form[action$='/quarantine'] button").click()
    wait_for(lambda: "‖ quarantined" in quarantine_text(), "the case was not quarantined")
    check("waiting on <i>JIRA-9</i>" in quarantine_text(), f"the reason is not shown as text: {quarantine_text()}")
    driver.execute_script("arguments[0].scrollIntoView()", driver.find_element(By.ID, "quarantine"))
    shot("04d-case-quarantined")
    driver.find_element(By.CSS_SELECTOR, "form[action$='/quarantine'] button").click()
    wait_for(lambda: "Not quarantined" in quarantine_text(), "the case was not released")

    # The project dashboard, from the report's breadcrumbs: trends as SVG, the runs, flaky, clusters.
    driver.get(report_url)
    driver.find_element(By.CSS_SELECTOR, ".crumbs a[href^='/projects/']").click()
    wait_for(lambda: "/projects/web" in driver.current_url, "the project dashboard did not open")
    rows = driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    check(len(rows) == 3, f"the dashboard lists {len(rows)} runs, not 3")
    check(len(driver.find_elements(By.CSS_SELECTOR, "svg.chart")) == 2, "no trend charts")
    check("expected 100" in driver.find_element(By.ID, "clusters").text or "expected" in driver.find_element(By.ID, "clusters").text,
          "the failure clusters are missing (the roll-up may still be running)")
    shot("05-project")

    # Triage the open defect: acknowledge it from the defects page.
    driver.find_element(By.CSS_SELECTOR, "#defects a.more").click()
    wait_for(lambda: "/defects" in driver.current_url, "the defects page did not open")
    check("Checkout total is wrong" in driver.find_element(By.TAG_NAME, "main").text, "the defect is not listed")
    def checkout_defect():
        return next((d for d in driver.find_elements(By.CSS_SELECTOR, "section.defect") if "Checkout total is wrong" in d.text), None)
    checkout_defect().find_element(By.CSS_SELECTOR, "form.triage button[value=acknowledged]").click()
    wait_for(lambda: checkout_defect() and checkout_defect().find_elements(By.CSS_SELECTOR, ".badge.acknowledged"),
             "the defect was not acknowledged")
    shot("05b-defects")

    # Failure clusters: the new one is marked; file a defect for it.
    project_url = driver.find_element(By.CSS_SELECTOR, ".crumbs a[href^='/projects/']").get_attribute("href")
    driver.get(project_url)
    driver.find_element(By.CSS_SELECTOR, "#clusters a.more").click()
    wait_for(lambda: "/clusters" in driver.current_url, "the clusters page did not open")
    clusters = driver.find_elements(By.CSS_SELECTOR, "main section.card[id^=c-]")
    check(clusters and any(c.find_elements(By.CSS_SELECTOR, ".badge.open") for c in clusters), "no cluster marked new")
    target = next((c for c in clusters if "expected 100" in c.text), None)
    check(target is not None, "the cart cluster is missing")
    if target is not None:
        cluster_id = target.get_attribute("id")
        target.find_element(By.CSS_SELECTOR, "input[name=title]").send_keys("Totals off by ten")
        target.find_element(By.XPATH, ".//input[@name='title']/following-sibling::button").click()
        wait_for(lambda: "Totals off by ten" in driver.find_element(By.ID, cluster_id).text, "the cluster's defect is not shown")
    shot("05c-clusters")

    # Flaky tests and the policy: an admin changes it and it is in force.
    driver.get(project_url)
    driver.find_element(By.CSS_SELECTOR, "#flaky a.more").click()
    wait_for(lambda: driver.find_elements(By.ID, "policy"), "the flaky page did not open")
    threshold = driver.find_element(By.CSS_SELECTOR, "#policy input[name=threshold]")
    threshold.clear()
    threshold.send_keys("0.3")
    driver.find_element(By.CSS_SELECTOR, "#policy button").click()
    wait_for(lambda: "Set by" in driver.find_element(By.ID, "policy").text, "the policy was not saved")
    check(driver.find_element(By.CSS_SELECTOR, "#policy input[name=threshold]").get_attribute("value") == "0.3", "the threshold did not stick")
    shot("05d-flaky")

    # The overview across workspaces.
    driver.find_element(By.LINK_TEXT, "Overview").click()
    wait_for(lambda: "/overview" in driver.current_url, "the overview did not open")
    facts = driver.find_element(By.CSS_SELECTOR, ".facts").text
    check("Runs\n3" in facts or "Runs 3" in facts, f"the overview does not count 3 runs: {facts}")
    check(len(driver.find_elements(By.CSS_SELECTOR, "svg.chart")) == 2, "no overview charts")
    shot("05e-overview")

    # The inbox: the owner was told of build-2's new failures (one is named with markup: text, not script).
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "header a[href='/notifications'] .badge"), "no unread badge in the header", 120)
    driver.find_element(By.CSS_SELECTOR, "header a[href='/notifications']").click()
    wait_for(lambda: "/notifications" in driver.current_url, "the inbox did not open")
    items = driver.find_elements(By.CSS_SELECTOR, ".inbox li.notification")
    check(any("2 new failures on main in web" in item.text for item in items), f"no new-failures notification: {[i.text for i in items]}")
    check(any("<script>window.__kaizen_xss=1</script>" in item.text for item in items), "the markup-named case is not shown as text")
    check(driver.execute_script("return window.__kaizen_xss === undefined"), "a notification's text ran as script")
    shot("05f-notifications")
    driver.find_element(By.CSS_SELECTOR, ".inbox li.notification.unread a").click()
    wait_for(lambda: "/runs/" in driver.current_url, "a notification's link does not open its run")
    driver.get(base.rstrip("/") + "/notifications")
    driver.find_element(By.CSS_SELECTOR, "form[action='/notifications/read'] button").click()
    wait_for(lambda: not driver.find_elements(By.CSS_SELECTOR, ".inbox li.unread"), "mark all read left unread ones")
    check(not driver.find_elements(By.CSS_SELECTOR, "header a[href='/notifications'] .badge"), "the header still counts unread ones")
    shot("05g-notifications-read")

    # What reaches the inbox from a project: chosen on its page, without script.
    driver.get(project_url)
    check(driver.find_elements(By.CSS_SELECTOR, "#notify .hint"), "the role's defaults are not said to be defaults")
    flaky_box = driver.find_element(By.CSS_SELECTOR, "#notify input[value=flaky_detected]")
    check(not flaky_box.is_selected(), "flaky cases are on by default")
    flaky_box.click()
    driver.find_element(By.CSS_SELECTOR, "#notify button").click()
    wait_for(lambda: "#notify" in driver.current_url, "saving the choice did not come back to the project")
    check(driver.find_element(By.CSS_SELECTOR, "#notify input[value=flaky_detected]").is_selected(), "the flaky choice did not stick")
    check(driver.find_element(By.CSS_SELECTOR, "#notify input[value=new_failures]").is_selected(), "new failures were dropped")
    check(not driver.find_elements(By.CSS_SELECTOR, "#notify .hint"), "still said to be the defaults")
    driver.execute_script("document.getElementById('notify').scrollIntoView()")
    shot("05h-notify-choice")

    # Settings, from the workspace switcher: a token is shown once; an invitation gives a link.
    driver.find_element(By.CSS_SELECTOR, "details.switcher summary").click()
    driver.find_element(By.CSS_SELECTOR, "details.switcher a[href$='/settings']").click()
    wait_for(lambda: "/settings" in driver.current_url, "settings did not open")
    driver.find_element(By.CSS_SELECTOR, "form[action$='/tokens'] input[name=name]").send_keys("ci-browser")
    driver.find_element(By.CSS_SELECTOR, "form[action$='/tokens'] button").click()
    wait_for(lambda: driver.find_elements(By.ID, "new-secret"), "the new token's secret is not shown")
    secret = driver.find_element(By.ID, "new-secret").text if driver.find_elements(By.ID, "new-secret") else ""
    check(secret.startswith("krt_"), f"not a token secret: {secret[:8]}")
    shot("09-settings-token")
    # Opened again (not reloaded: reloading a form's answer sends the form again), the secret is gone and the
    # token is listed once.
    driver.get(base.rstrip("/") + "/workspaces/default/settings")
    check(secret and secret not in driver.page_source, "the secret is shown again")
    listed = [row for row in driver.find_elements(By.CSS_SELECTOR, "#tokens tbody tr") if "ci-browser" in row.text]
    check(len(listed) == 1, f"the new token is listed {len(listed)} times")
    driver.find_element(By.CSS_SELECTOR, "form[action$='/invitations'] input[name=email]").send_keys("new.member@example.com")
    driver.find_element(By.CSS_SELECTOR, "form[action$='/invitations'] button").click()
    wait_for(lambda: driver.find_elements(By.ID, "new-secret"), "the invitation link is not shown")
    invitation_link = driver.find_element(By.ID, "new-secret").text if driver.find_elements(By.ID, "new-secret") else ""
    check("/invitations/accept#kln_" in invitation_link, f"not an invitation link: {invitation_link[:60]}")
    shot("09b-settings-invitation")
    driver.find_element(By.LINK_TEXT, "audit log").click()
    wait_for(lambda: "/audit" in driver.current_url, "the audit log did not open")
    audit = driver.find_element(By.TAG_NAME, "main").text
    check("invitation" in audit and "token" in audit, "the audit log misses the invitation or the token")
    shot("09c-audit")

    # The API reference's "try it" with the new token: GET /v1/me answers 200 for it.
    driver.get(base.rstrip("/") + "/docs")
    driver.find_element(By.ID, "try-token").send_keys(secret)
    driver.find_element(By.CSS_SELECTOR, "#getMe summary").click()
    driver.find_element(By.CSS_SELECTOR, "#getMe form.try button").click()
    wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "#getMe output").text.startswith("200"), "try it did not answer 200")
    check("ci-browser" in driver.find_element(By.CSS_SELECTOR, "#getMe output").text or "workspace" in driver.find_element(By.CSS_SELECTOR, "#getMe output").text,
          "try it did not show the answer")
    shot("06c-docs-try-it")

    # Every page fits a phone's width.
    driver.set_window_size(390, 844)
    for path in (project_url, project_url.replace("?", "/clusters?"), project_url.replace("?", "/flaky?"),
                 base.rstrip("/") + "/overview", base.rstrip("/") + "/workspaces/default/settings",
                 base.rstrip("/") + "/workspaces/default/audit", base.rstrip("/") + "/docs"):
        driver.get(path)
        check(driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1"),
              f"{path} is wider than a phone's screen")
    shot("08b-phone-audit")
    driver.set_window_size(1280, 1000)
    driver.find_element(By.CSS_SELECTOR, "header a.brand").click()
    wait_for(lambda: driver.current_url.rstrip("/") == base.rstrip("/"), "home did not open")
    check("web" in driver.find_element(By.TAG_NAME, "main").text, "home does not list the project")
    shot("06-home")

    # The API reference, from the header: every operation of the document, with a curl line to try it.
    driver.find_element(By.LINK_TEXT, "API").click()
    wait_for(lambda: "/docs" in driver.current_url, "the API reference did not open")
    operations = driver.find_elements(By.CSS_SELECTOR, "details.operation")
    check(len(operations) >= 50, f"the reference lists {len(operations)} operations")
    check(driver.find_elements(By.ID, "finalizeKenshoIngest"), "finalize is not in the reference")
    driver.find_element(By.CSS_SELECTOR, "#finalizeKenshoIngest summary").click()
    check("curl -X POST" in driver.find_element(By.ID, "finalizeKenshoIngest").text, "no curl line to try it")
    shot("06b-docs")

    # A phone in dark mode: the report fits the width (no sideways scrolling) and follows the system setting.
    driver.set_window_size(390, 844)
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    driver.get(report_url)
    wait_for(lambda: driver.find_elements(By.ID, "regression"), "the report did not open on a phone")
    check(driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1"),
          "the report is wider than a phone's screen")
    background = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
    check(background not in ("rgb(247, 247, 248)", "rgb(255, 255, 255)"), f"dark mode not applied: {background}")
    shot("08-phone-dark-report")
    driver.set_window_size(1280, 1000)
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})

    # Sign out (a form with the session's CSRF proof): the report asks to sign in again.
    driver.find_element(By.CSS_SELECTOR, "header form button").click()
    wait_for(lambda: "/login" in driver.current_url, "signing out did not lead to the sign-in page")
    driver.get(report_url)
    check("/login" in driver.current_url, "still signed in after signing out")
    shot("07-signed-out")

    # The invitation, opened by someone else: the link's secret fills the form from the fragment (and
    # leaves the address bar); they choose a password and land signed in.
    driver.get(invitation_link)
    wait_for(lambda: driver.find_elements(By.NAME, "password"), "the invitation page did not open")
    check("#" not in driver.current_url, "the secret stayed in the address bar")
    check(not driver.find_element(By.NAME, "secret").is_displayed(), "the link field is shown though the link filled it")
    shot("10-invitation")
    driver.find_element(By.NAME, "password").send_keys("a new member's passphrase")
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "header .who"), "joining did not sign in")
    check("new.member@example.com" in driver.page_source, "signed in as someone else")
    shot("10b-joined")
finally:
    driver.quit()

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("browser checks passed")
