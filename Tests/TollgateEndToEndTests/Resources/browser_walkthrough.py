"""Drives real headless Chromium (Selenium with Debian's chromedriver) through Tollgate's
consumer portal and operator dashboard, as people would use them.

Run by BrowserTests.swift:
    python browser_walkthrough.py PROXY_URL ADMIN_URL ADMIN_KEY [SCREENSHOT_DIR]
Every address is on 127.0.0.1. Prints one line per step; exits non-zero at the first failure.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.wait import WebDriverWait

PROXY, ADMIN, ADMIN_KEY = sys.argv[1], sys.argv[2], sys.argv[3]
SHOTS = sys.argv[4] if len(sys.argv) > 4 else None
for url in (PROXY, ADMIN):
    assert url.startswith("http://127.0.0.1:"), url

seen_pages = []  # (url, html) of every page looked at, checked at the end


def step(text):
    print("step: " + text, flush=True)


def fail(text):
    print("FAILED: " + text, flush=True)
    sys.exit(1)


def check(condition, text):
    if not condition:
        fail(text)


def http(method, url, headers=None, body=None):
    """A call outside the browser (the consumer's API client, the vendor's admin calls)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def admin(method, path, body=None):
    status, text = http(method, ADMIN + path, {"Authorization": "Bearer " + ADMIN_KEY}, body)
    return status, (json.loads(text) if text else None)


def call(token, path="/shop/hello"):
    return http("GET", PROXY + path, {"apikey": token})[0]


def wait_for(what, probe, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            fail("gave up waiting for " + what)
        time.sleep(0.2)


options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,1000",
                 "--disable-background-networking", "--no-first-run", "--disable-component-update", "--disable-sync"):
    options.add_argument(argument)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
driver.set_page_load_timeout(30)


def look(name=None):
    """Records the page for the final checks; saves a screenshot of its whole height."""
    html = driver.page_source
    seen_pages.append((driver.current_url, html))
    # Nothing the page loaded came from outside Tollgate.
    resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    for resource in resources:
        check(resource.startswith(PROXY) or resource.startswith(ADMIN), "a page loaded " + resource)
    if SHOTS and name:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, max(700, min(height + 40, 3000)))
        driver.save_screenshot(os.path.join(SHOTS, name + ".png"))
        driver.set_window_size(1280, 1000)
    return html


def text_of(element_id):
    """The text of an element, once the page that has it has loaded (a form post may still be on its way)."""
    element = WebDriverWait(driver, 20).until(expected_conditions.presence_of_element_located((By.ID, element_id)))
    return element.text.strip()


def click_and_wait(element):
    """Clicks a link or a button and waits until the next page has replaced this one."""
    element.click()

    def replaced(_):
        # Stale, or (ChromeDriver, mid-navigation) "node does not belong to the document":
        # either way the old page is gone. `staleness_of` lets the second one escape.
        try:
            element.is_enabled()
            return False
        except WebDriverException:
            return True

    WebDriverWait(driver, 20).until(replaced)


try:
    # --- The consumer portal: signup, token, a call, usage, rotation ---
    step("portal signup")
    driver.get(PROXY + "/_portal/signup")
    check(driver.title.startswith("Sign up"), "signup title: " + driver.title)
    look("portal-signup")
    driver.find_element(By.ID, "plan-shop-metered").click()
    driver.find_element(By.ID, "name").send_keys("Ada Browser")
    driver.find_element(By.ID, "email").send_keys("ada@example.com")
    click_and_wait(driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
    token = text_of("token")
    check(token.startswith("tg_"), "no token on the signup page")
    check(token in text_of("curl"), "the curl line lacks the token")
    token_pages = {driver.current_url}
    look("portal-token")

    step("a proxied call with the new token")
    check(call(token) == 200, "the new token was refused")
    for _ in range(4):
        check(call(token, "/shop/items/1") == 200, "an item read was refused")

    step("the usage on the portal's subscription page")
    click_and_wait(driver.find_element(By.LINK_TEXT, "Go to your subscription"))
    subscription_url = driver.current_url

    def usage_shown():
        driver.get(subscription_url)
        return "get-item" in driver.page_source and driver.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")
    wait_for("the calls on the subscription page", usage_shown)
    check("4" in driver.find_element(By.XPATH, "//td[text()='get-item']/following-sibling::td").text, "the page does not show 4 reads")
    check(text_of("estimate-total").endswith("EUR"), "no charge estimate")
    look("portal-subscription")

    step("rotate: the old token dies, the new one works")
    click_and_wait(driver.find_element(By.ID, "rotate"))
    new_token = text_of("token")
    token_pages.add(driver.current_url)
    check(new_token.startswith("tg_") and new_token != token, "no new token")
    check(call(token) == 401, "the old token still works")
    check(call(new_token) == 200, "the new token is refused")
    driver.get(PROXY + "/_portal/invoices")
    look("portal-invoices")

    # --- A one-time link handed out through the admin API ---
    step("a portal link from the admin API signs in, once")
    status, customer = admin("POST", "/v1/customers", {"name": "Grace Linked", "email": "grace@example.com"})
    check(status == 201, "customer not created")
    status, subscription = admin("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "shop-quota"})
    check(status == 201, "subscription not created")
    linked_token = subscription["token"]
    check(call(linked_token) == 200, "the linked customer's token is refused")
    status, link = admin("POST", "/v1/customers/%s/portal-sessions" % customer["id"])
    check(status == 201 and link["url"].startswith(PROXY + "/_portal/sign-in/"), "no portal link: %s" % status)
    driver.delete_all_cookies()
    driver.get(link["url"])
    check(driver.current_url.rstrip("/") == PROXY + "/_portal", "the link did not sign in: " + driver.current_url)
    check(subscription["id"] in driver.page_source, "the linked customer's subscription is not listed")
    check("Ada Browser" not in driver.page_source, "another customer's data is shown")
    look("portal-home")
    driver.delete_all_cookies()
    driver.get(link["url"])
    check("This link is not valid" in driver.page_source, "the link worked a second time")
    driver.get(PROXY + "/_portal")
    check("/_portal/sign-in" in driver.current_url, "signed in without a session")

    # Invoices to work with on the dashboard (the server keeps them as drafts).
    status, closed = admin("POST", "/v1/billing/close", {})
    check(status == 200 and closed["invoices"], "no invoices were made")

    # --- The operator dashboard ---
    step("dashboard sign-in")
    driver.get(ADMIN + "/dashboard")
    check(driver.current_url.endswith("/dashboard/sign-in"), "not sent to sign in")
    look("dashboard-sign-in")
    driver.find_element(By.ID, "key").send_keys(ADMIN_KEY)
    click_and_wait(driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]"))
    check(driver.find_element(By.TAG_NAME, "h1").text == "Overview", "no overview after sign-in")
    check(driver.find_elements(By.CSS_SELECTOR, "svg.chart"), "no chart on the overview")
    look("dashboard-overview")

    step("the customer listed, its subscription with a chart")
    click_and_wait(driver.find_element(By.LINK_TEXT, "Customers"))
    look("dashboard-customers")
    click_and_wait(driver.find_element(By.LINK_TEXT, "Grace Linked"))
    look("dashboard-customer")
    click_and_wait(driver.find_element(By.LINK_TEXT, subscription["id"]))
    check(driver.find_elements(By.CSS_SELECTOR, "svg.chart"), "no chart on the subscription page")
    check(linked_token not in driver.page_source, "the dashboard shows a token")
    look("dashboard-subscription")

    step("an invoice voided from the dashboard")
    driver.get(ADMIN + "/dashboard/invoices?status=draft")
    look("dashboard-invoices")
    # The draft with the most lines (the metered signup's first invoice: setup and fees in advance).
    status, drafts = admin("GET", "/v1/invoices?status=draft")
    invoice_id = max(drafts["data"], key=lambda invoice: len(invoice["lines"]))["id"]
    click_and_wait(driver.find_element(By.LINK_TEXT, invoice_id))
    look("dashboard-invoice")
    click_and_wait(driver.find_element(By.ID, "void"))
    check(text_of("invoice-status") == "void", "the invoice page does not say void")
    status, invoice = admin("GET", "/v1/invoices/" + invoice_id)
    check(invoice["status"] == "void", "the API does not say void")

    driver.get(ADMIN + "/dashboard/webhooks")
    look("dashboard-webhooks")

    step("a catalog edit with an error shown, then a valid one applied")
    driver.get(ADMIN + "/dashboard/catalog")
    original = driver.find_element(By.ID, "yaml").get_attribute("value")
    check("shop-basic" in original, "the catalog YAML is not shown")
    broken = original.replace('amount: "10.00"', 'amount: "ten"', 1)
    driver.execute_script("arguments[0].value = arguments[1]", driver.find_element(By.ID, "yaml"), broken)
    click_and_wait(driver.find_element(By.ID, "apply"))
    problems = driver.find_elements(By.CSS_SELECTOR, "tr.problem")
    check(problems and "amount" in problems[0].text, "no problem shown by its line")
    look("dashboard-catalog-error")
    lines = original.split("\n")
    index = lines.index('  - id: "shop-basic"')
    lines[index + 2] = lines[index + 2].replace('"Basic"', '"Basic (browser)"')
    driver.execute_script("arguments[0].value = arguments[1]", driver.find_element(By.ID, "yaml"), "\n".join(lines))
    click_and_wait(driver.find_element(By.ID, "apply"))
    check("The catalog was applied." in driver.page_source, "the valid catalog was not applied")
    status, plan = admin("GET", "/v1/plans/shop-basic")
    check(plan["name"] == "Basic (browser)", "the plan was not renamed")
    look("dashboard-catalog")

    step("no page shows a token except the one-time pages")
    for url, html in seen_pages:
        if url in token_pages:
            continue
        for secret in (token, new_token, linked_token):
            check(secret not in html, "%s shows a token" % url)
    print("browser walkthrough: %d pages, all checks passed" % len(seen_pages), flush=True)
finally:
    driver.quit()
