"""Kaizen's pages in a real headless Chromium (driven by GatewayTests/BrowserTests.swift).

Signs in through the form, opens the run report the CLI printed, checks the regression section and
the escaping of test-supplied text, filters to failed cases, opens a case with its step tree and an
inline image, signs out. Fails on any JavaScript console error. Saves a screenshot of every page.

usage: report_pages.py BASE_URL EMAIL PASSWORD REPORT_URL SCREENSHOT_DIR
"""
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

base, email, password, report_url, shots = sys.argv[1:6]
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
        WebDriverWait(driver, seconds).until(lambda d: condition())
    except Exception:
        failures.append(message)


def shot(name):
    driver.save_screenshot(os.path.join(shots, name + ".png"))
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

    regression = driver.find_element(By.ID, "regression")
    check("New failures" in regression.text, "no new-failures bucket")
    new_failures = regression.find_elements(By.CSS_SELECTOR, "h3.bucket.new + ul li")
    names = [item.text for item in new_failures]
    check(any("<script>window.__kaizen_xss=1</script>" in name for name in names), f"the escaped name is not shown as text: {names}")
    check(any("checkout total" in name for name in names), f"new failure missing: {names}")
    check(len(driver.find_elements(By.CSS_SELECTOR, "script")) == 0, "a script element made it into the page")
    check(driver.execute_script("return window.__kaizen_xss === undefined"), "test-supplied text ran as script")

    # Filter to failed cases (a plain GET form: works without script).
    driver.find_element(By.CSS_SELECTOR, "select[name=status] option[value=failed]").click()
    driver.find_element(By.CSS_SELECTOR, ".filters button").click()
    wait_for(lambda: "status=failed" in driver.current_url, "the filter did not apply")
    statuses = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#cases tbody td:first-child")]
    check(statuses and all("failed" in s for s in statuses), f"filtered list shows other statuses: {statuses}")
    shot("03-failed-cases")

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

    # Edit the case's owner and labels (a form with the session's CSRF proof, the API's rules).
    owner = driver.find_element(By.CSS_SELECTOR, "form.annotate input[name=owner]")
    owner.clear()
    owner.send_keys("alice")
    labels = driver.find_element(By.CSS_SELECTOR, "form.annotate input[name=labels]")
    labels.clear()
    labels.send_keys("checkout, slow")
    driver.find_element(By.CSS_SELECTOR, "form.annotate button").click()
    wait_for(lambda: "#triage" in driver.current_url, "the case edit did not come back to the case")
    check(driver.find_element(By.CSS_SELECTOR, "form.annotate input[name=owner]").get_attribute("value") == "alice", "the owner was not saved")
    check(driver.find_element(By.CSS_SELECTOR, "form.annotate input[name=labels]").get_attribute("value") == "checkout, slow", "the labels were not saved")
    shot("04b-case-edited")

    # The project dashboard, from the report's breadcrumbs: trends as SVG, the runs, flaky, clusters.
    driver.get(report_url)
    driver.find_element(By.CSS_SELECTOR, ".crumbs a[href^='/projects/']").click()
    wait_for(lambda: "/projects/web" in driver.current_url, "the project dashboard did not open")
    rows = driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    check(len(rows) == 2, f"the dashboard lists {len(rows)} runs, not 2")
    check(len(driver.find_elements(By.CSS_SELECTOR, "svg.chart")) == 2, "no trend charts")
    check("expected 100" in driver.find_element(By.ID, "clusters").text or "expected" in driver.find_element(By.ID, "clusters").text,
          "the failure clusters are missing (the roll-up may still be running)")
    shot("05-project")

    # Triage the open defect: acknowledge it from the defects page.
    driver.find_element(By.CSS_SELECTOR, "#defects a.more").click()
    wait_for(lambda: "/defects" in driver.current_url, "the defects page did not open")
    check("Checkout total is wrong" in driver.find_element(By.TAG_NAME, "main").text, "the defect is not listed")
    driver.find_element(By.CSS_SELECTOR, "section.defect form.triage button[value=acknowledged]").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "section.defect .badge.acknowledged"), "the defect was not acknowledged")
    shot("05b-defects")
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
finally:
    driver.quit()

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("browser checks passed")
