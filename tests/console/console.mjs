// Drives keygate's web console in Debian's chromium with playwright-core. One scenario
// per run (argv[2]); settings from the environment: URL, EMAIL, PASSWORD, SHOTS (a
// directory for screenshots), SPKI (when set, the base64 SHA-256 of the server key the
// browser trusts: the test CA's certificates are otherwise unknown to it). Prints one JSON line with what it saw; exits non-zero
// when an expectation fails. Run by crates/keygate/tests/it/console.rs.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import fs from "node:fs";

const { URL: BASE, EMAIL, PASSWORD, SHOTS } = process.env;
const scenario = process.argv[2];
fs.mkdirSync(SHOTS, { recursive: true });

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage",
    ...(process.env.SPKI ? [`--ignore-certificate-errors-spki-list=${process.env.SPKI}`] : []),
  ],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
const shot = (name) => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
const timed = async (path) => {
  const t = Date.now();
  const r = await page.goto(BASE + path);
  return { status: r.status(), ms: Date.now() - t };
};

async function signIn() {
  await page.goto(BASE + "/console/login");
  await page.fill("input[name=email]", EMAIL);
  await page.fill("input[name=password]", PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
}

const out = {};
try {
  if (scenario === "workflow") {
    // A wrong password first: refused, nothing said about which part was wrong.
    await page.goto(BASE + "/console/login");
    await shot("01-sign-in");
    await page.fill("input[name=email]", EMAIL);
    await page.fill("input[name=password]", "not the password at all");
    await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
    assert.match(await page.textContent(".notice.error"), /Wrong e-mail address or password/);

    await signIn();
    assert.equal(await page.textContent("h1"), "Service accounts");
    await page.fill("input[name=display_name]", "orders-app");
    await page.fill("input[name=description]", "Writes orders");
    await Promise.all([page.waitForNavigation(), page.click("form[action='/console/service-accounts'] button[type=submit]")]);
    assert.match(await page.textContent(".notice.ok"), /orders-app \(sa-[a-z0-9]+\) created/);
    out.sa = (await page.textContent(".notice.ok")).match(/\((sa-[a-z0-9]+)\)/)[1];
    await shot("02-service-accounts");
    await page.goto(`${BASE}/console/service-accounts/${out.sa}`);
    assert.match(await page.textContent("main"), /also deletes/);
    await shot("02b-service-account-edit");

    // The key wizard: owner, scope (the Kafka cluster), details.
    await page.goto(BASE + "/console/api-keys/new");
    await page.selectOption("select[name=owner]", out.sa);
    const scope = await page.$eval("select[name=scope]", (s) =>
      [...s.options].map((o) => o.value).find((v) => v.startsWith("lkc-")));
    assert.ok(scope, "the cluster is offered as a scope");
    await page.selectOption("select[name=scope]", scope);
    await page.fill("input[name=description]", "orders producer");
    await shot("03-create-key");
    await Promise.all([page.waitForNavigation(), page.click("form[action='/console/api-keys'] button[type=submit]")]);
    out.key = (await page.textContent("#key")).trim();
    out.secret = (await page.textContent("#secret")).trim();
    assert.match(out.secret, /^kgs_[0-9A-Za-z]{49}$/);
    assert.match(await page.textContent(".notice.warn"), /shown only on this page, only this once/);
    const configs = await page.$$eval("pre[id^=cfg]", (ps) => ps.map((p) => p.textContent));
    assert.equal(configs.length, 4);
    assert.ok(configs.every((c) => c.includes(out.key) && c.includes(out.secret)));
    out.bootstrap = configs[0].match(/bootstrap.servers=(\S+)/)[1];
    await shot("04-key-created");
    // A download is a real file with the configuration in it.
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("[data-download=cfg0]")]);
    const saved = fs.readFileSync(await download.path(), "utf8");
    assert.ok(saved.includes(`sasl.username=${out.key}`));

    // Reload: the secret is gone for good.
    await page.reload();
    const after = await page.content();
    assert.ok(!after.includes(out.secret), "the secret is not on the page after a reload");
    assert.match(await page.textContent(".notice.warn"), /shown once/);
    const back = await page.goto(`${BASE}/console/api-keys/${out.key}/created`);
    assert.ok(!(await back.text()).includes(out.secret));

    // The other pages, timed, with screenshots.
    out.timings = {};
    for (const [name, path] of [
      ["05-api-keys", "/console/api-keys"],
      ["06-environments", "/console/environments"],
      ["07-role-bindings", "/console/role-bindings?scope=topic&cluster=" + scope.split("|")[0] + "&name=orders&prefix=1"],
      ["08-identity-providers", "/console/identity-providers"],
      ["09-audit", "/console/audit"],
      ["10-acls", `/console/clusters/${scope.split("|")[0]}/acls`],
    ]) {
      const t = await timed(path);
      assert.equal(t.status, 200, path);
      out.timings[path.split("?")[0]] = t.ms;
      await shot(name);
    }
    // Client quotas: add one for the service account, see it listed, delete it.
    const lkc = scope.split("|")[0];
    await page.goto(`${BASE}/console/clusters/${lkc}/quotas`);
    await page.fill("input[name=display_name]", "orders-quota");
    await page.fill("input[name=principals]", out.sa);
    await page.fill("input[name=ingress]", "1048576");
    await page.fill("input[name=egress]", "2097152");
    await Promise.all([page.waitForNavigation(), page.click(`form[action='/console/clusters/${lkc}/quotas'] button[type=submit]`)]);
    assert.match(await page.textContent(".notice.ok"), /orders-quota \(cq-[a-z0-9]+\) created/);
    assert.match(await page.textContent("table"), new RegExp(out.sa));
    await shot("10b-quotas");
    page.once("dialog", (d) => d.accept());
    await Promise.all([page.waitForNavigation(), page.click("form[action$='/delete'] button")]);
    assert.match(await page.textContent(".notice.ok"), /deleted/);
    // The role picker offers only roles valid at a topic scope.
    await page.goto(BASE + "/console/role-bindings?scope=topic&cluster=" + scope.split("|")[0] + "&name=orders&prefix=1");
    const roles = await page.$$eval("select[name=role] option", (os) => os.map((o) => o.value));
    assert.ok(roles.includes("DeveloperRead") && roles.includes("DeveloperWrite"));
    assert.ok(!roles.includes("OrganizationAdmin") && !roles.includes("EnvironmentAdmin"), roles.join());
    // Identity providers: add one and a pool, then test the pool's filter on claims.
    await page.goto(BASE + "/console/identity-providers");
    await page.fill("form[action='/console/identity-providers'] input[name=display_name]", "corp-idp");
    await page.fill("input[name=issuer]", "https://idp.example.com");
    await page.fill("input[name=jwks_uri]", "http://127.0.0.1:9/jwks");
    await Promise.all([page.waitForNavigation(), page.click("form[action='/console/identity-providers'] button[type=submit]")]);
    assert.match(await page.textContent(".notice.ok"), /corp-idp \(op-/);
    await page.fill("form[action$='/pools'] input[name=display_name]", "payments");
    await page.fill("form[action$='/pools'] input[name=filter]", "'payments' in claims.groups");
    await Promise.all([page.waitForNavigation(), page.click("form[action$='/pools'] button[type=submit]")]);
    assert.match(await page.textContent(".notice.ok"), /payments \(pool-/);
    const tryClaims = async (claims) => {
      await page.fill("textarea[name=claims]", claims);
      await Promise.all([page.waitForNavigation(), page.click("form[action='/console/identity-providers/test'] button[type=submit]")]);
      return page.textContent(".notice");
    };
    assert.match(await tryClaims('{"sub": "payments-app", "groups": ["payments"]}'), /^Matches/);
    await shot("08-identity-providers");
    assert.match(await tryClaims('{"sub": "web-app", "groups": ["web"]}'), /^No match/);
    assert.match(await tryClaims("not json"), /not JSON/);
    // Phone width: the same page, still usable.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(BASE + "/console/api-keys");
    await shot("11-api-keys-phone");
    // Keyboard: the sign-out button is reachable by Tab.
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(BASE + "/console/service-accounts");
    let reached = false;
    for (let i = 0; i < 40 && !reached; i++) {
      await page.keyboard.press("Tab");
      reached = await page.evaluate(() => document.activeElement?.textContent?.trim() === "Sign out");
    }
    assert.ok(reached, "sign out is reachable by keyboard");
    await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
    assert.match(await page.textContent(".notice.ok"), /Signed out/);
    const gone = await page.goto(BASE + "/console/api-keys");
    assert.ok(page.url().endsWith("/console/login"), "signed out: back to sign-in");
    out.signedOut = gone.status();
  } else if (scenario === "limited") {
    await signIn();
    assert.equal(await page.textContent("h1"), "Service accounts");
    out.createForm = await page.$$eval("form[method=post][action='/console/service-accounts']", (f) => f.length);
    out.editLinks = await page.$$eval("a[href^='/console/service-accounts/']", (a) => a.length);
    out.auditLink = await page.$$eval("nav a[href='/console/audit']", (a) => a.length);
    await shot("20-limited-user");
    await page.goto(BASE + "/console/role-bindings");
    out.grantForms = await page.$$eval("form[action='/console/role-bindings']", (f) => f.length);
    out.revokeButtons = await page.$$eval("form[action$='/delete']", (f) => f.length);
    await page.goto(BASE + "/console/identity-providers");
    out.providerForms = await page.$$eval("form[action='/console/identity-providers']", (f) => f.length);
    out.auditByUrl = (await page.goto(BASE + "/console/audit")).status();
    await page.goto(BASE + "/console/service-accounts");
    const csrf = await page.$eval("input[name=csrf]", (i) => i.value);
    const r = await page.request.post(BASE + "/console/service-accounts", { form: { csrf, display_name: "sneaky" } });
    out.createByUrl = r.status();
    out.createByUrlText = (await r.text()).includes("do not allow");
    out.editByUrl = (await page.goto(BASE + "/console/service-accounts/" + process.env.SA)).status();
  } else if (scenario === "csrf") {
    await signIn();
    const none = await page.request.post(BASE + "/console/service-accounts", { form: { display_name: "evil-no-token" } });
    const wrong = await page.request.post(BASE + "/console/service-accounts", { form: { csrf: "x".repeat(43), display_name: "evil-wrong-token" } });
    out.noToken = none.status();
    out.wrongToken = wrong.status();
    out.message = (await none.text()).includes("CSRF");
    // A sign-in posted from another site is refused by its Origin.
    const foreign = await page.request.post(BASE + "/console/login", {
      form: { email: EMAIL, password: PASSWORD },
      headers: { Origin: "https://evil.example" },
      maxRedirects: 0,
    });
    out.foreignSignIn = foreign.status();
    // A crafted link cannot put words on a console page; the console's own notices show.
    await page.goto(BASE + "/console/service-accounts?error=" + encodeURIComponent("Call 555-0100 to restore your account"));
    out.injectedNotice = await page.$$eval(".notice", (n) => n.length);
    await page.fill("form[method=post] input[name=display_name]", "");
    await page.fill("input[name=description]", "x");
    await page.$eval("form[method=post][action='/console/service-accounts']", (f) => f.noValidate = true);
    await Promise.all([page.waitForNavigation(), page.click("form[method=post][action='/console/service-accounts'] button[type=submit]")]);
    out.ownNotice = (await page.textContent(".notice.error")) || "";
  } else if (scenario === "certificates") {
    // Certificate identities: add a CA (PEM pasted), then a pool with a CEL filter.
    await signIn();
    await page.goto(BASE + "/console/certificate-authorities");
    await page.fill("input[name=display_name]", "clients");
    await page.fill("textarea[name=certificate_chain]", fs.readFileSync(process.env.CA_PEM, "utf8"));
    await Promise.all([page.waitForNavigation(), page.click("form[action='/console/certificate-authorities'] button[type=submit]")]);
    assert.match(await page.textContent(".notice.ok"), /Certificate authority clients \(op-[a-z0-9]+\) added/);
    out.fingerprints = await page.textContent("dl.facts dd.mono:nth-of-type(2)");
    await page.fill("form[action$='/pools'] input[name=display_name]", "orders");
    await page.fill("form[action$='/pools'] input[name=filter]", "CN == 'orders-app'");
    await Promise.all([page.waitForNavigation(), page.click("form[action$='/pools'] button[type=submit]")]);
    assert.match(await page.textContent(".notice.ok"), /Certificate identity pool orders \(pool-[a-z0-9]+\) added/);
    out.pools = await page.$$eval("table tbody tr", (rows) => rows.map((r) => r.textContent));
    await shot("31-certificate-authorities");
  } else if (scenario === "upstream") {
    // A Kafka cluster whose brokers keygate logs in to: the password is typed once,
    // never shown again.
    await signIn();
    await page.goto(BASE + "/console/environments");
    await page.fill("form[action='/console/clusters'] input[name=display_name]", "secure");
    await page.fill("form[action='/console/clusters'] input[name=upstream]", "127.0.0.1:9");
    await page.click("details summary");
    await page.selectOption("select[name=upstream_security_protocol]", "SASL_PLAINTEXT");
    await page.selectOption("select[name=upstream_sasl_mechanism]", "SCRAM-SHA-512");
    await page.fill("input[name=upstream_username]", "keygate");
    await page.fill("input[name=upstream_password]", process.env.UPSTREAM_PASSWORD);
    await Promise.all([page.waitForNavigation(), page.click("form[action='/console/clusters'] button[type=submit]")]);
    assert.match(await page.textContent(".notice.ok"), /registered/);
    out.row = await page.textContent("table tbody");
    out.passwordOnPage = (await page.content()).includes(process.env.UPSTREAM_PASSWORD);
    await shot("32-upstream-security");
  } else if (scenario === "https") {
    // Over HTTPS: signed in, the session cookie is Secure, HSTS is sent, and the page
    // came over HTTP/2.
    const first = await page.goto(BASE + "/console/login");
    out.hsts = first.headers()["strict-transport-security"] || "";
    await signIn();
    assert.equal(await page.textContent("h1"), "Service accounts");
    out.protocol = await page.evaluate(() => location.protocol);
    out.http = await page.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol);
    out.cookies = (await context.cookies()).map((c) => ({ name: c.name, secure: c.secure, httpOnly: c.httpOnly }));
    await shot("30-https");
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
  console.log(JSON.stringify({ ok: true, ...out }));
} catch (e) {
  await shot(`failure-${scenario}`).catch(() => {});
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack || e), ...out }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
