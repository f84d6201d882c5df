//! The pages. Each handler: the signed-in user (or a redirect to sign in), the CSRF
//! check for posts, one call to the IAM service, then HTML — or a redirect back with
//! a notice. A refusal by the authorizer is a 403 page, whatever the URL.

use crate::session::{self, Posted, Signed};
use crate::{ConsoleState, Flash};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use keygate_authz::Capability;
use keygate_core::model::{Account, AccountKind, ApiKey, KeyScope, Resource};
use keygate_core::{
    AclBinding, Operation, PatternType, Permission, Principal, ResourceKind, ResourceType, Role,
};
use keygate_iam::{AclFilter, AuditQuery};
use keygate_iam::{IamError, NewApiKey, NewPool, NewProvider, NewResource};
use maud::{html, Markup, DOCTYPE};
use std::collections::HashMap;
use std::time::{Duration, Instant};

type Q = Query<HashMap<String, String>>;
type F = Form<HashMap<String, String>>;

const PAGE: usize = 50;

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}

fn field<'a>(f: &'a HashMap<String, String>, k: &str) -> &'a str {
    f.get(k).map(|s| s.trim()).unwrap_or("")
}

fn date(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "—".into())
}

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · keygate" }
        link rel="stylesheet" href="/console/static/console.css";
        script src="/console/static/console.js" defer {}
    }
}

fn notices(q: &HashMap<String, String>) -> Markup {
    html! {
        @if let Some(m) = q.get("ok") { div.notice.ok role="status" { (m) } }
        @if let Some(m) = q.get("error") { div.notice.error role="alert" { (m) } }
    }
}

/// The page frame: navigation, header, the signed-in user and sign-out.
fn layout(st: &ConsoleState, s: &Signed, active: &str, title: &str, body: Markup) -> Response {
    let org = st.iam.organization_crn();
    let ops = st.iam.can(&s.caller, Capability::ViewOperations, &org);
    let link = |href: &str, name: &str, key: &str| {
        html! { a href=(href) class=[(key == active).then_some("on")] { (name) } }
    };
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                nav.side aria-label="Main" {
                    div.brand { span {} "keygate" }
                    h2 { "Administration" }
                    (link("/console/service-accounts", "Service accounts", "sa"))
                    (link("/console/api-keys", "API keys", "keys"))
                    (link("/console/role-bindings", "Role bindings", "rb"))
                    (link("/console/identity-providers", "Identity providers", "idp"))
                    (link("/console/certificate-authorities", "Certificate authorities", "ca"))
                    @if ops { (link("/console/audit", "Audit log", "audit")) }
                    h2 { "Resources" }
                    (link("/console/environments", "Environments & clusters", "env"))
                }
                main {
                    header.top {
                        div { div.crumbs { "Organization " (st.iam.org().display_name) } h1 { (title) } }
                        div.who {
                            span { "Signed in as " strong { (s.email) } }
                            form.inline method="post" action="/console/logout" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button.secondary.small type="submit" { "Sign out" }
                            }
                        }
                    }
                    (body)
                }
            }
        }
    };
    page.into_response()
}

fn bare(status: StatusCode, title: &str, message: &str) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                div.login {
                    section.card {
                        div.brand { span {} "keygate" }
                        h2 { (title) }
                        p { (message) }
                        p { a href="/console/" { "Back to the console" } }
                    }
                }
            }
        }
    };
    (status, page).into_response()
}

pub(crate) fn forbidden_page(message: &str) -> Response {
    bare(StatusCode::FORBIDDEN, "Not allowed", message)
}

pub(crate) fn unavailable(message: &str) -> Response {
    bare(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", message)
}

/// An IAM error on a page: 403 and 404 are pages; the rest go back with a notice.
fn fail(e: IamError, back: &str) -> Response {
    match e {
        IamError::Forbidden(m) => {
            forbidden_page(&format!("Your role bindings do not allow this: {m}."))
        }
        IamError::NotFound(what, id) => bare(
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("{what} {id} was not found."),
        ),
        IamError::Unavailable(m) | IamError::Internal(m) => {
            // The cause goes to the log; the page says what the user can do.
            tracing::error!(error = %m, "console request failed");
            let mut r =
                unavailable("keygate cannot reach its database right now; try again in a moment.");
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
            r
        }
        other => {
            let sep = if back.contains('?') { '&' } else { '?' };
            Redirect::to(&format!("{back}{sep}error={}", enc(&other.to_string()))).into_response()
        }
    }
}

fn done(back: &str, message: &str) -> Response {
    let sep = if back.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{back}{sep}ok={}", enc(message))).into_response()
}

fn csrf_field(s: &Signed) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}

// ---- sign-in ------------------------------------------------------------------------

pub(crate) async fn home() -> Redirect {
    Redirect::to("/console/service-accounts")
}

pub(crate) async fn login_form(Query(q): Q) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in"))
            body {
                div.login {
                    section.card {
                        div.brand { span {} "keygate" }
                        @if let Some(m) = q.get("error") { div.notice.error role="alert" { (m) } }
                        @if q.contains_key("out") { div.notice.ok role="status" { "Signed out." } }
                        form method="post" action="/console/login" {
                            label { "E-mail" input type="email" name="email" autocomplete="username" required autofocus; }
                            label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                            button type="submit" { "Sign in" }
                        }
                        p.muted { small { "An administrator sets passwords: " code { "keygate iam user set-password" } } }
                    }
                }
            }
        }
    };
    page.into_response()
}

pub(crate) async fn login(
    State(st): State<ConsoleState>,
    parts: axum::http::request::Parts,
    Form(f): F,
) -> Response {
    if !session::same_origin(&parts.headers) {
        return forbidden_page("This sign-in did not come from the console.");
    }
    let email = field(&f, "email").to_owned();
    let client = session::peer(&parts);
    let source = session::peer_ip(&parts);
    let outcome = st
        .iam
        .sign_in(
            &email,
            f.get("password").map(String::as_str).unwrap_or(""),
            source,
        )
        .await;
    match &outcome {
        Ok(c) => session::audit_sign_in(&st, &email, Some(c.principal.to_string()), client),
        Err(IamError::Unauthenticated) => session::audit_sign_in(&st, &email, None, client),
        Err(_) => {}
    }
    match outcome {
        Ok(c) => match session::start(&st, &c.account_id).await {
            Ok(cookie) => {
                tracing::info!(user = c.account_id, "console sign-in");
                ([(header::SET_COOKIE, cookie)], Redirect::to("/console/")).into_response()
            }
            Err(e) => unavailable(&e),
        },
        Err(IamError::Unauthenticated) => {
            tracing::info!("console sign-in failed");
            tokio::time::sleep(st.cfg.failure_delay).await;
            Redirect::to(&format!(
                "/console/login?error={}",
                enc("Wrong e-mail address or password.")
            ))
            .into_response()
        }
        Err(IamError::Throttled(wait)) => {
            let secs = wait.as_secs().max(1);
            let mut r = bare(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                &format!("Too many failed sign-ins from your address. Try again in {secs} s."),
            );
            if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Err(e) => unavailable(&e.to_string()),
    }
}

pub(crate) async fn logout(State(st): State<ConsoleState>, Posted(s, _): Posted) -> Response {
    let _ = st.iam.end_session(s.session).await;
    (
        [(header::SET_COOKIE, session::clear(&st))],
        Redirect::to("/console/login?out=1"),
    )
        .into_response()
}

// ---- service accounts -----------------------------------------------------------------

pub(crate) async fn service_accounts(
    State(st): State<ConsoleState>,
    s: Signed,
    Query(q): Q,
) -> Response {
    let all = match st
        .iam
        .list_accounts(&s.caller, AccountKind::ServiceAccount)
        .await
    {
        Ok(a) => a,
        Err(e) => return fail(e, "/console/service-accounts"),
    };
    let needle = q
        .get("q")
        .map(|n| n.trim().to_lowercase())
        .unwrap_or_default();
    let shown: Vec<&Account> = all
        .iter()
        .filter(|a| {
            needle.is_empty()
                || a.id.to_lowercase().contains(&needle)
                || a.display_name.to_lowercase().contains(&needle)
                || a.description.to_lowercase().contains(&needle)
        })
        .collect();
    let manage = st.iam.can(
        &s.caller,
        Capability::ManageAccounts,
        &st.iam.organization_crn(),
    );
    let body = html! {
        (notices(&q))
        @if manage {
            section.card {
                h2 { "New service account" }
                form method="post" action="/console/service-accounts" {
                    (csrf_field(&s))
                    div.row {
                        label { "Name" input type="text" name="display_name" required maxlength="64" placeholder="orders-app"; }
                        label { "Description" input type="text" name="description" maxlength="1024" placeholder="What it is for"; }
                        div { button type="submit" { "Create" } }
                    }
                }
            }
        }
        section.card {
            form.row method="get" action="/console/service-accounts" role="search" {
                label { "Search" input type="search" name="q" value=[q.get("q")] placeholder="name, id or description"; }
                div { button.secondary type="submit" { "Search" } }
            }
            p.muted { (shown.len()) " of " (all.len()) " service accounts" }
            table {
                thead { tr { th { "ID" } th { "Name" } th { "Description" } th { "Created" } @if manage { th {} } } }
                tbody {
                    @for a in &shown {
                        tr {
                            td.mono { (a.id) }
                            td { (a.display_name) }
                            td.muted { (a.description) }
                            td { (date(Some(a.created_at))) }
                            @if manage { td { a.button.secondary.small href={ "/console/service-accounts/" (a.id) } { "Edit" } } }
                        }
                    }
                }
            }
        }
    };
    layout(&st, &s, "sa", "Service accounts", body)
}

pub(crate) async fn create_service_account(
    State(st): State<ConsoleState>,
    Posted(s, f): Posted,
) -> Response {
    match st
        .iam
        .create_service_account(
            &s.caller,
            field(&f, "display_name"),
            field(&f, "description"),
        )
        .await
    {
        Ok(a) => done(
            "/console/service-accounts",
            &format!("Service account {} ({}) created.", a.display_name, a.id),
        ),
        Err(e) => fail(e, "/console/service-accounts"),
    }
}

pub(crate) async fn service_account(
    State(st): State<ConsoleState>,
    s: Signed,
    Path(id): Path<String>,
    Query(q): Q,
) -> Response {
    let back = format!("/console/service-accounts/{id}");
    let a = match st
        .iam
        .get_account(&s.caller, AccountKind::ServiceAccount, &id)
        .await
    {
        Ok(a) => a,
        Err(e) => return fail(e, "/console/service-accounts"),
    };
    if let Err(e) = st.iam.check(
        &s.caller,
        Capability::ManageAccounts,
        &st.iam.organization_crn(),
        "edit service accounts (AccountAdmin or OrganizationAdmin)",
    ) {
        return fail(e, "/console/service-accounts");
    }
    let keys = st
        .iam
        .list_api_keys(&s.caller, Some(&id), None)
        .await
        .unwrap_or_default();
    let principal = Principal::user(id.clone());
    let bindings = st
        .iam
        .list_role_bindings(
            &s.caller,
            &st.iam.organization_crn().to_string(),
            Some(&principal.to_string()),
            None,
        )
        .await
        .unwrap_or_default();
    let acls = st.iam.count_acls_of(&principal).await.unwrap_or(0);
    let goes = format!(
        "Delete {} ({})? Its {} API key(s), {} role binding(s) and {} ACL(s) are deleted with it.",
        a.display_name,
        a.id,
        keys.len(),
        bindings.len(),
        acls
    );
    let body = html! {
        (notices(&q))
        section.card {
            h2 { "Details" }
            form method="post" action=(back) {
                (csrf_field(&s))
                label { "Name" input type="text" name="display_name" value=(a.display_name) required maxlength="64"; }
                label { "Description" input type="text" name="description" value=(a.description) maxlength="1024"; }
                button type="submit" { "Save" }
            }
        }
        section.card {
            h2 { "Delete" }
            p { "Deleting " strong { (a.id) } " also deletes:" }
            ul {
                li { (keys.len()) " API key(s)" @for k in &keys { " " code { (k.id.as_str()) } } }
                li { (bindings.len()) " role binding(s)" @for b in &bindings { " " code { (b.role.as_str()) } } }
                li { (acls) " Kafka ACL(s)" }
            }
            form method="post" action={ (back) "/delete" } data-confirm=(goes) {
                (csrf_field(&s))
                button.danger type="submit" { "Delete service account" }
            }
        }
    };
    layout(
        &st,
        &s,
        "sa",
        &format!("Service account {}", a.display_name),
        body,
    )
}

pub(crate) async fn update_service_account(
    State(st): State<ConsoleState>,
    Path(id): Path<String>,
    Posted(s, f): Posted,
) -> Response {
    let back = format!("/console/service-accounts/{id}");
    match st
        .iam
        .update_account(
            &s.caller,
            AccountKind::ServiceAccount,
            &id,
            Some(field(&f, "display_name")),
            Some(field(&f, "description")),
        )
        .await
    {
        Ok(_) => done(&back, "Saved."),
        Err(e) => fail(e, &back),
    }
}

pub(crate) async fn delete_service_account(
    State(st): State<ConsoleState>,
    Path(id): Path<String>,
    Posted(s, _): Posted,
) -> Response {
    match st
        .iam
        .delete_account(&s.caller, AccountKind::ServiceAccount, &id)
        .await
    {
        Ok(()) => done(
            "/console/service-accounts",
            &format!("{id} deleted with its keys, role bindings and ACLs."),
        ),
        Err(e) => fail(e, &format!("/console/service-accounts/{id}")),
    }
}

// ---- API keys -----------------------------------------------------------------------

fn phase(k: &ApiKey) -> &'static str {
    if k.disabled {
        "DISABLED"
    } else if k.expires_at.is_some_and(|e| e <= chrono::Utc::now()) {
        "EXPIRED"
    } else {
        "ACTIVE"
    }
}

fn scope_label(k: &ApiKey) -> String {
    match &k.scope {
        KeyScope::Cloud => "Cloud (management API)".into(),
        KeyScope::Resource { kind, id, .. } => format!("{} {id}", kind_label(*kind)),
    }
}

fn kind_label(k: ResourceKind) -> &'static str {
    match k {
        ResourceKind::Kafka => "Kafka cluster",
        ResourceKind::SchemaRegistry => "Schema Registry",
        ResourceKind::Ksql => "ksqlDB cluster",
        ResourceKind::Flink => "Flink region",
        ResourceKind::Tableflow => "Tableflow",
    }
}

pub(crate) async fn api_keys(State(st): State<ConsoleState>, s: Signed, Query(q): Q) -> Response {
    let mut keys = match st.iam.list_api_keys(&s.caller, None, None).await {
        Ok(k) => k,
        Err(e) => return fail(e, "/console/api-keys"),
    };
    keys.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then(a.id.as_str().cmp(b.id.as_str()))
    });
    let total = keys.len();
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let shown: Vec<&ApiKey> = keys.iter().skip(page * PAGE).take(PAGE).collect();
    let body = html! {
        (notices(&q))
        section.card {
            div.row.between {
                p.muted { (total) " keys you manage" }
                a.button href="/console/api-keys/new" { "Create API key" }
            }
            table {
                thead { tr { th { "Key" } th { "Owner" } th { "Scope" } th { "Status" } th { "Created" } th { "Expires" } th { "Last used" } th {} } }
                tbody {
                    @for k in &shown {
                        tr {
                            td { span.mono { (k.id.as_str()) } @if !k.description.is_empty() { br; small.muted { (k.description) } } }
                            td.mono { (k.owner_id) }
                            td { (scope_label(k)) }
                            td { span class={ "pill " (phase(k)) } { (phase(k)) } }
                            td { (date(Some(k.created_at))) }
                            td { (date(k.expires_at)) }
                            td { (date(k.last_used_at)) }
                            td.actions {
                                @let base = format!("/console/api-keys/{}", k.id.as_str());
                                @if k.disabled {
                                    form.inline method="post" action={ (base) "/enable" } { (csrf_field(&s)) button.secondary.small type="submit" { "Enable" } }
                                } @else {
                                    form.inline method="post" action={ (base) "/disable" } { (csrf_field(&s)) button.secondary.small type="submit" { "Disable" } }
                                }
                                form.inline method="post" action={ (base) "/delete" } data-confirm={ "Delete key " (k.id.as_str()) "? Clients using it stop working at once." } {
                                    (csrf_field(&s)) button.danger.small type="submit" { "Delete" }
                                }
                            }
                        }
                    }
                }
            }
            div.pager {
                @if page > 0 { a href={ "/console/api-keys?page=" (page - 1) } { "← Newer" } }
                span.muted { "Page " (page + 1) " of " (total.div_ceil(PAGE).max(1)) }
                @if (page + 1) * PAGE < total { a href={ "/console/api-keys?page=" (page + 1) } { "Older →" } }
            }
        }
    };
    layout(&st, &s, "keys", "API keys", body)
}

async fn all_resources(st: &ConsoleState, s: &Signed) -> Vec<Resource> {
    let mut out = Vec::new();
    for kind in ResourceKind::ALL {
        out.extend(
            st.iam
                .list_resources(&s.caller, kind, None)
                .await
                .unwrap_or_default(),
        );
    }
    out
}

pub(crate) async fn new_api_key(
    State(st): State<ConsoleState>,
    s: Signed,
    Query(q): Q,
) -> Response {
    let sas = st
        .iam
        .list_accounts(&s.caller, AccountKind::ServiceAccount)
        .await
        .unwrap_or_default();
    let resources = all_resources(&st, &s).await;
    let body = html! {
        (notices(&q))
        section.card {
            form method="post" action="/console/api-keys" {
                (csrf_field(&s))
                h2 { "1 · Owner" }
                label { "The key acts as"
                    select name="owner" {
                        option value="me" { "My account (" (s.email) ")" }
                        @for a in &sas { option value=(a.id) selected[q.get("owner") == Some(&a.id)] { "Service account " (a.display_name) " (" (a.id) ")" } }
                    }
                    small { "A key can do exactly what its owner may do, on its scope only." }
                }
                h2 { "2 · Scope" }
                label { "The key works for"
                    select name="scope" {
                        option value="CLOUD" { "Cloud — the management API (REST, CLI)" }
                        @for r in &resources {
                            option value={ (r.id) "|" (r.environment_id) } { (kind_label(r.kind)) " " (r.display_name) " (" (r.id) ", " (r.environment_id) ")" }
                        }
                    }
                }
                h2 { "3 · Details" }
                div.row {
                    label { "Description" input type="text" name="description" maxlength="1024" placeholder="orders-app producer in prod"; }
                    label { "Expires"
                        select name="expires" {
                            option value="" { "Never" }
                            option value="30" { "In 30 days" }
                            option value="90" { "In 90 days" }
                            option value="365" { "In a year" }
                        }
                    }
                }
                button type="submit" { "Create key" }
                " "
                a.button.secondary href="/console/api-keys" { "Cancel" }
            }
        }
    };
    layout(&st, &s, "keys", "Create an API key", body)
}

pub(crate) async fn create_api_key(
    State(st): State<ConsoleState>,
    Posted(s, f): Posted,
) -> Response {
    let back = "/console/api-keys/new";
    let (resource_id, environment_id) = match field(&f, "scope").split_once('|') {
        Some((r, e)) => (r.to_owned(), Some(e.to_owned())),
        None => (field(&f, "scope").to_owned(), None),
    };
    let expires_at = match field(&f, "expires") {
        "" => None,
        d => match d.parse::<i64>() {
            Ok(days) if (1..=3650).contains(&days) => {
                Some(chrono::Utc::now() + chrono::Duration::days(days))
            }
            _ => {
                return fail(
                    IamError::invalid("/expires", "must be a number of days"),
                    back,
                )
            }
        },
    };
    let owner = field(&f, "owner");
    let n = NewApiKey {
        display_name: String::new(),
        description: field(&f, "description").to_owned(),
        owner_id: (owner != "me" && !owner.is_empty()).then(|| owner.to_owned()),
        resource_id,
        environment_id,
        expires_at,
    };
    match st.iam.create_api_key(&s.caller, n).await {
        Ok((k, secret)) => {
            if let Ok(mut fl) = st.flashes.lock() {
                fl.retain(|_, v| v.at.elapsed() < Duration::from_secs(600));
                fl.insert(
                    (s.session, k.id.to_string()),
                    Flash {
                        secret: secret.expose().to_owned(),
                        at: Instant::now(),
                    },
                );
            }
            Redirect::to(&format!("/console/api-keys/{}/created", k.id.as_str())).into_response()
        }
        Err(e) => fail(e, back),
    }
}

/// Where a key is used: its Kafka cluster's bootstrap, or its HTTP service's URL.
fn bootstrap(st: &ConsoleState, k: &ApiKey) -> Option<String> {
    let KeyScope::Resource {
        kind,
        id,
        environment_id,
    } = &k.scope
    else {
        return None;
    };
    if *kind != ResourceKind::Kafka {
        let r = st
            .iam
            .snapshot()
            .services()
            .get(&Resource::key(*kind, environment_id, id))
            .cloned()?;
        return service_endpoint(st, &r);
    }
    let slot = st.iam.snapshot().gateway_slot(id)?;
    Some(st.cfg.gateway.as_ref()?.bootstrap(id, slot))
}

/// Ready-made client settings for a new key: (label, file name, contents). Kafka keys
/// get librdkafka, Java, Python and .env files; HTTP service keys their clients' own.
fn client_configs(
    k: &ApiKey,
    at: &str,
    key: &str,
    secret: &str,
) -> Vec<(&'static str, &'static str, String)> {
    let kind = match &k.scope {
        KeyScope::Resource { kind, .. } => *kind,
        KeyScope::Cloud => ResourceKind::Kafka,
    };
    let env = format!("KEYGATE_URL={at}\nKEYGATE_API_KEY={key}\nKEYGATE_API_SECRET={secret}\n");
    match kind {
        ResourceKind::Kafka => vec![
            ("librdkafka", "client.properties", format!("bootstrap.servers={at}\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username={key}\nsasl.password={secret}\n")),
            ("Java", "java.properties", format!("bootstrap.servers={at}\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"{key}\" password=\"{secret}\";\n")),
            ("Python", "client_config.py", format!("config = {{\n    \"bootstrap.servers\": \"{at}\",\n    \"security.protocol\": \"SASL_PLAINTEXT\",\n    \"sasl.mechanism\": \"PLAIN\",\n    \"sasl.username\": \"{key}\",\n    \"sasl.password\": \"{secret}\",\n}}\n")),
            (".env", "keygate.env", format!("KAFKA_BOOTSTRAP_SERVERS={at}\nKAFKA_SASL_USERNAME={key}\nKAFKA_SASL_PASSWORD={secret}\nKEYGATE_API_KEY={key}\nKEYGATE_API_SECRET={secret}\n")),
        ],
        ResourceKind::SchemaRegistry => vec![
            ("Schema Registry client", "schema-registry.properties", format!("schema.registry.url={at}\nbasic.auth.credentials.source=USER_INFO\nbasic.auth.user.info={key}:{secret}\n")),
            (".env", "keygate.env", env),
        ],
        ResourceKind::Tableflow => vec![
            ("PyIceberg", "catalog.py", format!("from pyiceberg.catalog import load_catalog\n\ncatalog = load_catalog(\"tableflow\", type=\"rest\", uri=\"{at}\",\n                       credential=\"{key}:{secret}\", scope=\"catalog\")\n")),
            (".env", "keygate.env", env),
        ],
        ResourceKind::Ksql | ResourceKind::Flink => vec![(".env", "keygate.env", env)],
    }
}

/// The HTTP gateway's URL of a service.
fn service_endpoint(st: &ConsoleState, r: &Resource) -> Option<String> {
    let base = st.cfg.http_gateway.as_deref()?;
    let path = r.http_gateway_path(&st.iam.org().id)?;
    Some(format!("{}{path}", base.trim_end_matches('/')))
}

pub(crate) async fn created_api_key(
    State(st): State<ConsoleState>,
    s: Signed,
    Path(id): Path<String>,
) -> Response {
    let k = match st.iam.get_api_key(&s.caller, &id).await {
        Ok(k) => k,
        Err(e) => return fail(e, "/console/api-keys"),
    };
    // Taken, not read: the secret is on this response and nowhere else afterwards.
    let flash = st
        .flashes
        .lock()
        .ok()
        .and_then(|mut f| f.remove(&(s.session, id.clone())))
        .filter(|f| f.at.elapsed() < Duration::from_secs(600));
    let boot = bootstrap(&st, &k).unwrap_or_else(|| "<bootstrap address>".into());
    let body = match flash {
        None => html! {
            section.card {
                h2 { "Key " code { (k.id.as_str()) } }
                div.notice.warn { "The secret of this key was shown once, when it was created, and cannot be shown again. If it was lost, create a new key and delete this one." }
                a.button.secondary href="/console/api-keys" { "Back to API keys" }
            }
        },
        Some(fl) => {
            let key = k.id.as_str();
            let secret = fl.secret.as_str();
            let configs = client_configs(&k, &boot, key, secret);
            html! {
                section.card {
                    div.notice.warn role="alert" { "Copy the secret now. It is shown only on this page, only this once: keygate stores a keyed hash of it and cannot show it again." }
                    dl.facts {
                        dt { "Owner" } dd.mono { (k.owner_id) }
                        dt { "Scope" } dd { (scope_label(&k)) }
                        @if bootstrap(&st, &k).is_some() {
                            dt { @if matches!(k.scope, KeyScope::Resource { kind: ResourceKind::Kafka, .. }) { "Bootstrap" } @else { "Endpoint" } }
                            dd.mono { (boot) }
                        }
                    }
                    h2.mt { "API key" }
                    div.secret { code #key { (key) } button.secondary.small type="button" data-copy="key" { "Copy" } }
                    h2 { "API secret" }
                    div.secret { code #secret { (secret) } button.secondary.small type="button" data-copy="secret" { "Copy" } }
                    h2 { "Client configuration" }
                    p.muted { "Ready to use, with the secret in it: download it now." }
                    div.actions {
                        @for (i, (name, file, _)) in configs.iter().enumerate() {
                            button.secondary type="button" data-download={ "cfg" (i) } data-filename=(file) { "Download " (name) }
                        }
                    }
                    @for (i, (_, _, text)) in configs.iter().enumerate() {
                        pre id={ "cfg" (i) } hidden { (text) }
                    }
                    p { a.button href="/console/api-keys" { "I have saved the secret" } }
                }
            }
        }
    };
    layout(&st, &s, "keys", "API key created", body)
}

pub(crate) async fn api_key_action(
    State(st): State<ConsoleState>,
    Path((id, action)): Path<(String, String)>,
    Posted(s, _): Posted,
) -> Response {
    let back = "/console/api-keys";
    let r = match action.as_str() {
        "disable" => st
            .iam
            .set_api_key_disabled(&s.caller, &id, true)
            .await
            .map(|_| "disabled"),
        "enable" => st
            .iam
            .set_api_key_disabled(&s.caller, &id, false)
            .await
            .map(|_| "enabled"),
        "delete" => st
            .iam
            .delete_api_key(&s.caller, &id)
            .await
            .map(|_| "deleted"),
        _ => return bare(StatusCode::NOT_FOUND, "Not found", "No such action."),
    };
    match r {
        Ok(what) => done(back, &format!("Key {id} {what}.")),
        Err(e) => fail(e, back),
    }
}

// ---- environments and clusters ----------------------------------------------------------

pub(crate) async fn environments(
    State(st): State<ConsoleState>,
    s: Signed,
    Query(q): Q,
) -> Response {
    let envs = match st.iam.list_environments(&s.caller).await {
        Ok(e) => e,
        Err(e) => return fail(e, "/console/environments"),
    };
    let resources = all_resources(&st, &s).await;
    let org = st.iam.organization_crn();
    let can_env = st.iam.can(&s.caller, Capability::ManageEnvironment, &org);
    let boot = |r: &Resource| -> Option<String> {
        if r.kind != ResourceKind::Kafka {
            return service_endpoint(&st, r);
        }
        let slot = st.iam.snapshot().gateway_slot(&r.id)?;
        Some(st.cfg.gateway.as_ref()?.bootstrap(&r.id, slot))
    };
    let body = html! {
        (notices(&q))
        @for e in &envs {
            section.card {
                h2 { (e.display_name) " " small.muted.mono { (e.id) } }
                @let here: Vec<&Resource> = resources.iter().filter(|r| r.environment_id == e.id).collect();
                @if here.is_empty() { p.muted { "No clusters or other resources yet." } } @else {
                    table {
                        thead { tr { th { "Kind" } th { "ID" } th { "Name" } th { "Upstream" } th { "Clients connect to" } th {} } }
                        tbody {
                            @for r in &here {
                                tr {
                                    td { (kind_label(r.kind)) }
                                    td.mono { (r.id) }
                                    td { (r.display_name) }
                                    td.mono { (r.upstream)
                                        @if r.kind == ResourceKind::Kafka && r.upstream_security.protocol != keygate_core::SecurityProtocol::Plaintext {
                                            br; small.muted { (r.upstream_security.protocol.as_str())
                                                @if let Some(u) = &r.upstream_security.username { " as " (u) } }
                                        }
                                    }
                                    td.mono { @if r.kind == ResourceKind::Kafka { (boot(r).unwrap_or_else(|| "—".into())) } @else { "—" } }
                                    td { @if r.kind == ResourceKind::Kafka { a href={ "/console/clusters/" (r.id) "/acls" } { "ACLs" } " · " a href={ "/console/clusters/" (r.id) "/quotas" } { "Quotas" } } }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if can_env {
            section.card {
                h2 { "New environment" }
                form.row method="post" action="/console/environments" {
                    (csrf_field(&s))
                    label { "Name" input type="text" name="display_name" required maxlength="64" placeholder="prod"; }
                    div { button type="submit" { "Create" } }
                }
            }
        }
        @if !envs.is_empty() {
            section.card {
                h2 { "Register a cluster or service" }
                form method="post" action="/console/clusters" {
                    (csrf_field(&s))
                    div.row {
                        label { "Kind"
                            select name="kind" {
                                @for k in ResourceKind::ALL { option value=(k.as_str()) { (kind_label(k)) } }
                            }
                        }
                        label { "Environment" select name="environment" { @for e in &envs { option value=(e.id) { (e.display_name) " (" (e.id) ")" } } } }
                        label { "Name" input type="text" name="display_name" required maxlength="64" placeholder="main"; }
                    }
                    div.row {
                        label { "Upstream" small { "Kafka: broker-1:9092,broker-2:9092 · others: http(s)://host:port" } input type="text" name="upstream" required; }
                        label { "Region" small { "Flink only, e.g. aws.us-east-1" } input type="text" name="region"; }
                        div { button type="submit" { "Register" } }
                    }
                    div.row {
                        label { "Kafka cluster" small { "ksqlDB only: the lkc-… it runs on" } input type="text" name="kafka_cluster"; }
                        label { "Credential identity" small { "ksqlDB only: the u-… or sa-… it runs as" } input type="text" name="credential_identity"; }
                        label { "CSUs" small { "ksqlDB only, recorded (default 1)" } input type="number" name="csu" min="1" max="1024"; }
                    }
                    details {
                        summary { "Kafka: how keygate connects to the brokers (TLS, its own SASL credential)" }
                        div.row {
                            label { "Security protocol" select name="upstream_security_protocol" {
                                option value="" { "PLAINTEXT" }
                                @for p in ["SSL", "SASL_PLAINTEXT", "SASL_SSL"] { option value=(p) { (p) } }
                            } }
                            label { "SASL mechanism" select name="upstream_sasl_mechanism" {
                                option value="" { "—" }
                                @for m in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] { option value=(m) { (m) } }
                            } }
                            label { "User name" input type="text" name="upstream_username" autocomplete="off"; }
                            label { "Password" small { "write-only: stored encrypted, never shown" } input type="password" name="upstream_password" autocomplete="new-password"; }
                        }
                        div.row {
                            label { "Brokers' CA (PEM)" small { "empty: the system's roots" } textarea name="upstream_ca_pem" placeholder="-----BEGIN CERTIFICATE-----" {} }
                            label { "Server name" small { "empty: each broker's host" } input type="text" name="upstream_server_name"; }
                        }
                    }
                }
            }
        }
    };
    layout(&st, &s, "env", "Environments & clusters", body)
}

pub(crate) async fn create_environment(
    State(st): State<ConsoleState>,
    Posted(s, f): Posted,
) -> Response {
    match st
        .iam
        .create_environment(&s.caller, field(&f, "display_name"))
        .await
    {
        Ok(e) => done(
            "/console/environments",
            &format!("Environment {} ({}) created.", e.display_name, e.id),
        ),
        Err(e) => fail(e, "/console/environments"),
    }
}

/// The upstream security fields of the cluster form (empty fields are not given; the
/// password field is write-only: never filled in on any page).
fn upstream_input(f: &HashMap<String, String>) -> keygate_iam::UpstreamInput {
    let opt = |name: &str| Some(field(f, name).to_owned()).filter(|v| !v.is_empty());
    keygate_iam::UpstreamInput {
        protocol: opt("upstream_security_protocol"),
        mechanism: opt("upstream_sasl_mechanism"),
        username: opt("upstream_username"),
        // Not trimmed: a password may start or end with a space.
        password: f
            .get("upstream_password")
            .filter(|p| !p.is_empty())
            .cloned(),
        ca_pem: opt("upstream_ca_pem"),
        server_name: opt("upstream_server_name"),
        ..Default::default()
    }
}

pub(crate) async fn create_cluster(
    State(st): State<ConsoleState>,
    Posted(s, f): Posted,
) -> Response {
    let kind = ResourceKind::parse(field(&f, "kind")).unwrap_or(ResourceKind::Kafka);
    let n = NewResource {
        kind,
        environment_id: field(&f, "environment").to_owned(),
        display_name: field(&f, "display_name").to_owned(),
        upstream: field(&f, "upstream").to_owned(),
        region: Some(field(&f, "region").to_owned()).filter(|r| !r.is_empty()),
        upstream_security: upstream_input(&f),
        ksql: keygate_iam::KsqlInput {
            kafka_cluster: Some(field(&f, "kafka_cluster").to_owned()),
            credential_identity: Some(field(&f, "credential_identity").to_owned()),
            csu: match field(&f, "csu") {
                "" => None,
                // Not a number: out of range, refused with the range.
                n => Some(n.parse().unwrap_or(0)),
            },
        },
    };
    match st.iam.create_resource(&s.caller, n).await {
        Ok(r) => done(
            "/console/environments",
            &format!(
                "{} {} ({}) registered.",
                kind_label(r.kind),
                r.display_name,
                r.id
            ),
        ),
        Err(e) => fail(e, "/console/environments"),
    }
}

// ---- ACLs ---------------------------------------------------------------------------------

pub(crate) async fn acls(
    State(st): State<ConsoleState>,
    s: Signed,
    Path(cluster): Path<String>,
    Query(q): Q,
) -> Response {
    let back = format!("/console/clusters/{cluster}/acls");
    let list = match st
        .iam
        .list_acls(&s.caller, &cluster, &AclFilter::default())
        .await
    {
        Ok(l) => l,
        Err(e) => return fail(e, &back),
    };
    let body = html! {
        (notices(&q))
        section.card {
            h2 { "ACLs of " code { (cluster) } }
            @if list.is_empty() { p.muted { "No ACLs." } } @else {
                table {
                    thead { tr { th { "Principal" } th { "Permission" } th { "Operation" } th { "Resource" } th { "Pattern" } th {} } }
                    tbody {
                        @for a in &list {
                            @let b = &a.binding;
                            tr {
                                td.mono { (b.principal.to_string()) }
                                td { span class={ "pill " (if b.permission == Permission::Allow { "yes" } else { "no" }) } { (b.permission.as_str()) } }
                                td { (b.operation.as_str()) }
                                td { (b.resource_type.as_str()) " " code { (b.resource_name) } }
                                td { (b.pattern_type.as_str()) }
                                td {
                                    form.inline method="post" action={ (back) "/delete" } data-confirm="Delete this ACL?" {
                                        (csrf_field(&s))
                                        input type="hidden" name="principal" value=(b.principal.to_string());
                                        input type="hidden" name="resource_type" value=(b.resource_type.as_str());
                                        input type="hidden" name="resource_name" value=(b.resource_name);
                                        input type="hidden" name="pattern_type" value=(b.pattern_type.as_str());
                                        input type="hidden" name="operation" value=(b.operation.as_str());
                                        input type="hidden" name="permission" value=(b.permission.as_str());
                                        button.danger.small type="submit" { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Add an ACL" }
            form method="post" action=(back) {
                (csrf_field(&s))
                div.row {
                    label { "Principal" input type="text" name="principal" required placeholder="User:sa-…"; }
                    label { "Permission" select name="permission" { option { "ALLOW" } option { "DENY" } } }
                    label { "Operation" select name="operation" { @for o in Operation::ALL_OPS { option { (o.as_str()) } } } }
                }
                div.row {
                    label { "Resource type" select name="resource_type" { @for t in ResourceType::ALL { option { (t.as_str()) } } } }
                    label { "Resource name" input type="text" name="resource_name" required placeholder="orders"; }
                    label { "Pattern" select name="pattern_type" { option { "LITERAL" } option { "PREFIXED" } } }
                }
                button type="submit" { "Add ACL" }
            }
        }
    };
    layout(&st, &s, "env", &format!("Kafka ACLs · {cluster}"), body)
}

fn acl_from(f: &HashMap<String, String>) -> Result<AclBinding, IamError> {
    let bad = |p: &str| IamError::invalid(p, format!("`{}` is not valid", field(f, p)));
    Ok(AclBinding {
        principal: Principal::parse(field(f, "principal"))
            .map_err(|e| IamError::invalid("principal", e.to_string()))?,
        resource_type: ResourceType::parse(field(f, "resource_type"))
            .ok_or_else(|| bad("resource_type"))?,
        resource_name: field(f, "resource_name").to_owned(),
        pattern_type: PatternType::parse(field(f, "pattern_type"))
            .ok_or_else(|| bad("pattern_type"))?,
        operation: Operation::parse(field(f, "operation")).ok_or_else(|| bad("operation"))?,
        permission: Permission::parse(field(f, "permission")).ok_or_else(|| bad("permission"))?,
    })
}

pub(crate) async fn create_acl(
    State(st): State<ConsoleState>,
    Path(cluster): Path<String>,
    Posted(s, f): Posted,
) -> Response {
    let back = format!("/console/clusters/{cluster}/acls");
    let acl = match acl_from(&f) {
        Ok(a) => a,
        Err(e) => return fail(e, &back),
    };
    match st.iam.create_acls(&s.caller, &cluster, vec![acl]).await {
        Ok(_) => done(&back, "ACL added."),
        Err(e) => fail(e, &back),
    }
}

pub(crate) async fn delete_acl(
    State(st): State<ConsoleState>,
    Path(cluster): Path<String>,
    Posted(s, f): Posted,
) -> Response {
    let back = format!("/console/clusters/{cluster}/acls");
    let b = match acl_from(&f) {
        Ok(a) => a,
        Err(e) => return fail(e, &back),
    };
    let filter = AclFilter {
        principal: Some(b.principal),
        resource_type: Some(b.resource_type),
        resource_name: Some(b.resource_name),
        pattern_type: Some(b.pattern_type),
        operation: Some(b.operation),
        permission: Some(b.permission),
        host: None,
    };
    match st.iam.delete_acls(&s.caller, &cluster, &filter).await {
        Ok(d) => done(&back, &format!("{} ACL(s) deleted.", d.len())),
        Err(e) => fail(e, &back),
    }
}

// ---- client quotas ------------------------------------------------------------------------

pub(crate) async fn quotas(
    State(st): State<ConsoleState>,
    s: Signed,
    Path(cluster): Path<String>,
    Query(q): Q,
) -> Response {
    let back = format!("/console/clusters/{cluster}/quotas");
    let list = match st.iam.list_client_quotas(&s.caller, Some(&cluster)).await {
        Ok(l) => l,
        Err(e) => return fail(e, "/console/environments"),
    };
    let body = html! {
        (notices(&q))
        section.card {
            h2 { "Client quotas of " code { (cluster) } }
            p.muted { "Produce (ingress) and fetch (egress) bytes per second, per principal, across all its connections. Over a quota the gateway answers with throttle_time_ms and pauses the connection, as a broker does: clients slow down, nothing fails. " code { "<default>" } " is every principal without a quota of its own." }
            @if list.is_empty() { p.muted { "No client quotas." } } @else {
                table {
                    thead { tr { th { "Name" } th { "Principals" } th { "Ingress B/s" } th { "Egress B/s" } th { "Requests/s" } th {} } }
                    tbody {
                        @for c in &list {
                            tr {
                                td { (c.display_name) br; small.mono { (c.id) } }
                                td.mono { (c.principals.join(", ")) }
                                td { (c.ingress_byte_rate) }
                                td { (c.egress_byte_rate) }
                                td { (c.request_rate.map_or_else(|| "—".to_owned(), |r| r.to_string())) }
                                td {
                                    form.inline method="post" action={ (back) "/" (c.id) "/delete" } data-confirm="Delete this client quota?" {
                                        (csrf_field(&s))
                                        button.danger.small type="submit" { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Add a client quota" }
            form method="post" action=(back) {
                (csrf_field(&s))
                div.row {
                    label { "Name" input type="text" name="display_name" required maxlength="64" placeholder="orders-app"; }
                    label { "Principals" small { "comma-separated sa-…, u-…, pool-…, or <default>" } input type="text" name="principals" required; }
                }
                div.row {
                    label { "Ingress (bytes/s)" input type="number" name="ingress" required min="1"; }
                    label { "Egress (bytes/s)" input type="number" name="egress" required min="1"; }
                    label { "Requests/s" small { "optional" } input type="number" name="request_rate" min="1"; }
                }
                button type="submit" { "Add quota" }
            }
        }
    };
    layout(&st, &s, "env", &format!("Client quotas · {cluster}"), body)
}

pub(crate) async fn create_quota(
    State(st): State<ConsoleState>,
    Path(cluster): Path<String>,
    Posted(s, f): Posted,
) -> Response {
    let back = format!("/console/clusters/{cluster}/quotas");
    let input = keygate_iam::QuotaInput {
        display_name: Some(field(&f, "display_name").to_owned()),
        cluster_id: Some(cluster.clone()),
        principals: Some(
            field(&f, "principals")
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        ingress_byte_rate: Some(field(&f, "ingress").to_owned()),
        egress_byte_rate: Some(field(&f, "egress").to_owned()),
        request_rate: Some(field(&f, "request_rate").parse().ok()),
        ..Default::default()
    };
    match st.iam.create_client_quota(&s.caller, input).await {
        Ok(c) => done(
            &back,
            &format!("Client quota {} ({}) created.", c.display_name, c.id),
        ),
        Err(e) => fail(e, &back),
    }
}

pub(crate) async fn delete_quota(
    State(st): State<ConsoleState>,
    Path((cluster, id)): Path<(String, String)>,
    Posted(s, _): Posted,
) -> Response {
    let back = format!("/console/clusters/{cluster}/quotas");
    match st.iam.delete_client_quota(&s.caller, &id).await {
        Ok(()) => done(&back, &format!("Client quota {id} deleted.")),
        Err(e) => fail(e, &back),
    }
}

// ---- role bindings ----------------------------------------------------------------------

/// The CRN pattern the scope picker describes, if complete.
fn scope_pattern(
    st: &ConsoleState,
    resources: &[Resource],
    q: &HashMap<String, String>,
) -> Option<String> {
    let org = st.iam.organization_crn();
    let cluster = || {
        let id = field(q, "cluster");
        resources
            .iter()
            .find(|r| r.kind == ResourceKind::Kafka && r.id == id)
    };
    let name = field(q, "name");
    let star = if q.contains_key("prefix") { "*" } else { "" };
    Some(match field(q, "scope") {
        "organization" => org.to_string(),
        "environment" => org
            .child("environment", field(q, "environment"))
            .to_string(),
        "cluster" => cluster()?.crn(&org).to_string(),
        kind @ ("topic" | "group" | "transactional-id") if !name.is_empty() => {
            let c = cluster()?;
            format!("{}/kafka={}/{kind}={name}{star}", c.crn(&org), c.id)
        }
        _ => return None,
    })
}

pub(crate) async fn role_bindings(
    State(st): State<ConsoleState>,
    s: Signed,
    Query(q): Q,
) -> Response {
    let org = st.iam.organization_crn();
    let list = match st
        .iam
        .list_role_bindings(&s.caller, &org.to_string(), None, None)
        .await
    {
        Ok(l) => l,
        Err(e) => return fail(e, "/console/role-bindings"),
    };
    let envs = st
        .iam
        .list_environments(&s.caller)
        .await
        .unwrap_or_default();
    let resources = all_resources(&st, &s).await;
    let clusters: Vec<&Resource> = resources
        .iter()
        .filter(|r| r.kind == ResourceKind::Kafka)
        .collect();
    let mut principals: Vec<(String, String)> = Vec::new();
    for kind in [AccountKind::ServiceAccount, AccountKind::User] {
        for a in st
            .iam
            .list_accounts(&s.caller, kind)
            .await
            .unwrap_or_default()
        {
            let label = if a.email.is_empty() {
                a.display_name.clone()
            } else {
                a.email.clone()
            };
            principals.push((format!("User:{}", a.id), format!("{label} ({})", a.id)));
        }
    }
    let pattern = scope_pattern(&st, &resources, &q);
    let valid: Vec<Role> = pattern
        .as_deref()
        .and_then(|p| keygate_core::crn::CrnPattern::parse(p).ok())
        .map(|p| {
            Role::ALL
                .iter()
                .copied()
                .filter(|r| r.check_scope(&p).is_ok())
                .collect()
        })
        .unwrap_or_default();
    let scope = field(&q, "scope");
    let grants =
        |p: &keygate_core::crn::CrnPattern| st.iam.can(&s.caller, Capability::GrantRoles, p);
    let may_grant = grants(&org)
        || envs
            .iter()
            .any(|e| grants(&org.child("environment", &e.id)))
        || clusters.iter().any(|c| grants(&c.crn(&org)));
    let body = html! {
        (notices(&q))
        @if may_grant { section.card {
            h2 { "Grant a role" }
            form method="get" action="/console/role-bindings" {
                div.row {
                    label { "Scope"
                        select name="scope" {
                            @for (v, l) in [("organization", "The organization"), ("environment", "An environment"), ("cluster", "A Kafka cluster"), ("topic", "Topics in a cluster"), ("group", "Consumer groups in a cluster"), ("transactional-id", "Transactional ids in a cluster")] {
                                option value=(v) selected[scope == v] { (l) }
                            }
                        }
                    }
                    label { "Environment" select name="environment" { @for e in &envs { option value=(e.id) selected[field(&q, "environment") == e.id] { (e.display_name) " (" (e.id) ")" } } } }
                    label { "Cluster" select name="cluster" { @for c in &clusters { option value=(c.id) selected[field(&q, "cluster") == c.id] { (c.display_name) " (" (c.id) ")" } } } }
                }
                div.row {
                    label { "Resource name" small { "for topics, groups and transactional ids" } input type="text" name="name" value=(field(&q, "name")) placeholder="orders"; }
                    label { input type="checkbox" name="prefix" value="1" checked[q.contains_key("prefix")]; " Every name starting with it" }
                    div { button.secondary type="submit" { "Choose roles for this scope" } }
                }
            }
            @if let Some(p) = &pattern {
                hr;
                p { "Scope: " code { (p) } }
                @if valid.is_empty() { p.muted { "No role can be bound at this scope." } } @else {
                    form method="post" action="/console/role-bindings" {
                        (csrf_field(&s))
                        input type="hidden" name="crn_pattern" value=(p);
                        div.row {
                            label { "Principal" select name="principal" { @for (v, l) in &principals { option value=(v) { (l) } } } }
                            label { "Role" small { "only roles valid at this scope" } select name="role" { @for r in &valid { option value=(r.as_str()) { (r.as_str()) } } } }
                            div { button type="submit" { "Grant" } }
                        }
                    }
                }
            }
        } }
        section.card {
            h2 { "Role bindings you can see" }
            table {
                thead { tr { th { "Principal" } th { "Role" } th { "Scope" } th {} } }
                tbody {
                    @for b in &list {
                        tr {
                            td.mono { (b.principal.to_string()) }
                            td { span.pill { (b.role.as_str()) } }
                            td.mono { (b.crn_pattern.to_string()) }
                            td {
                                @if grants(&b.crn_pattern) {
                                    form.inline method="post" action={ "/console/role-bindings/" (b.id) "/delete" } data-confirm={ "Revoke " (b.role.as_str()) " from " (b.principal.to_string()) "?" } {
                                        (csrf_field(&s)) button.danger.small type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(&st, &s, "rb", "Role bindings", body)
}

pub(crate) async fn create_role_binding(
    State(st): State<ConsoleState>,
    Posted(s, f): Posted,
) -> Response {
    match st
        .iam
        .create_role_binding(
            &s.caller,
            field(&f, "principal"),
            field(&f, "role"),
            field(&f, "crn_pattern"),
        )
        .await
    {
        Ok(b) => done(
            "/console/role-bindings",
            &format!("{} granted {} ({}).", b.principal, b.role.as_str(), b.id),
        ),
        Err(e) => fail(e, "/console/role-bindings"),
    }
}

pub(crate) async fn delete_role_binding(
    State(st): State<ConsoleState>,
    Path(id): Path<String>,
    Posted(s, _): Posted,
) -> Response {
    match st.iam.delete_role_binding(&s.caller, &id).await {
        Ok(_) => done(
            "/console/role-bindings",
            &format!("Role binding {id} revoked."),
        ),
        Err(e) => fail(e, "/console/role-bindings"),
    }
}

// ---- certificate authorities and their pools (mTLS) -------------------------------------

pub(crate) async fn authorities(
    State(st): State<ConsoleState>,
    s: Signed,
    Query(q): Q,
) -> Response {
    let admin = st.iam.can(
        &s.caller,
        Capability::ManageAccounts,
        &st.iam.organization_crn(),
    );
    let cas = match st.iam.list_certificate_authorities(&s.caller).await {
        Ok(c) => c,
        Err(e) => return fail(e, "/console/certificate-authorities"),
    };
    let mut pools = Vec::new();
    for ca in &cas {
        let of = st
            .iam
            .list_certificate_pools(&s.caller, &ca.id)
            .await
            .unwrap_or_default();
        pools.push(of);
    }
    let body = html! {
        (notices(&q))
        p.muted { "Client certificates signed by these authorities authenticate with "
            code { "security.protocol=SSL" } " and no SASL, as the pools whose filter they pass." }
        @for (ca, pools) in cas.iter().zip(&pools) {
            @let facts = keygate_iam::certs::chain_facts(ca.certificate.as_ref().map_or("", |c| c.chain_pem.as_str())).unwrap_or_default();
            section.card {
                h2 { (ca.display_name) " " small.muted.mono { (ca.id) } }
                dl.facts {
                    dt { "Certificate chain" } dd.mono { (ca.certificate.as_ref().map_or("", |c| c.chain_filename.as_str())) }
                    dt { "Fingerprints (SHA-1)" } dd.mono { (facts.fingerprints.join(", ")) }
                    dt { "Expires" } dd { (facts.expiration_dates.iter().map(|d| d.format("%Y-%m-%d").to_string()).collect::<Vec<_>>().join(", ")) }
                    dt { "Revocation list" } dd { (if ca.certificate.as_ref().is_some_and(|c| c.crl_pem.is_some()) { "uploaded" } else { "none" }) }
                }
                h2.mt { "Certificate identity pools" }
                table {
                    thead { tr { th { "Pool (principal)" } th { "Name" } th { "External identifier" } th { "Filter" } } }
                    tbody {
                        @for pool in pools {
                            tr { td.mono { (pool.id) } td { (pool.display_name) } td.mono { (pool.identity_claim) } td.mono { (pool.filter) } }
                        }
                    }
                }
                @if admin { form method="post" action={ "/console/certificate-authorities/" (ca.id) "/pools" } {
                    (csrf_field(&s))
                    div.row {
                        label { "New pool name" input type="text" name="display_name" required maxlength="64"; }
                        label { "External identifier" input type="text" name="external_identifier" value="CN" required; }
                        label { "Filter (CEL)" input type="text" name="filter" required placeholder="CN == 'orders-app' && O == 'Acme'"; }
                        div { button.secondary type="submit" { "Add pool" } }
                    }
                } }
            }
        }
        @if admin { section.card {
            h2 { "Add a certificate authority" }
            form method="post" action="/console/certificate-authorities" {
                (csrf_field(&s))
                label { "Name" input type="text" name="display_name" required maxlength="64"; }
                label { "Certificate chain (PEM)" textarea name="certificate_chain" required placeholder="-----BEGIN CERTIFICATE-----" {} }
                label { "Revocation list (PEM, optional)" textarea name="crl_chain" placeholder="-----BEGIN X509 CRL-----" {} }
                button type="submit" { "Add certificate authority" }
            }
        } }
    };
    layout(&st, &s, "ca", "Certificate authorities", body)
}

pub(crate) async fn create_authority(
    State(st): State<ConsoleState>,
    Posted(s, f): Posted,
) -> Response {
    let n = keygate_iam::certs::NewAuthority {
        display_name: field(&f, "display_name").to_owned(),
        description: String::new(),
        certificate_chain: field(&f, "certificate_chain").to_owned(),
        certificate_chain_filename: "console.pem".to_owned(),
        crl_chain: Some(field(&f, "crl_chain").to_owned()).filter(|c| !c.is_empty()),
        crl_url: None,
    };
    match st.iam.create_certificate_authority(&s.caller, n).await {
        Ok(p) => done(
            "/console/certificate-authorities",
            &format!("Certificate authority {} ({}) added.", p.display_name, p.id),
        ),
        Err(e) => fail(e, "/console/certificate-authorities"),
    }
}

pub(crate) async fn create_certificate_pool(
    State(st): State<ConsoleState>,
    Path(id): Path<String>,
    Posted(s, f): Posted,
) -> Response {
    let n = keygate_iam::certs::NewCertPool {
        display_name: field(&f, "display_name").to_owned(),
        description: String::new(),
        external_identifier: field(&f, "external_identifier").to_owned(),
        filter: field(&f, "filter").to_owned(),
    };
    match st.iam.create_certificate_pool(&s.caller, &id, n).await {
        Ok(p) => done(
            "/console/certificate-authorities",
            &format!(
                "Certificate identity pool {} ({}) added.",
                p.display_name, p.id
            ),
        ),
        Err(e) => fail(e, "/console/certificate-authorities"),
    }
}

// ---- identity providers and pools ---------------------------------------------------------

async fn providers_page(
    st: &ConsoleState,
    s: &Signed,
    q: &HashMap<String, String>,
    tested: Option<Markup>,
) -> Response {
    let admin = st.iam.can(
        &s.caller,
        Capability::ManageAccounts,
        &st.iam.organization_crn(),
    );
    let providers = match st.iam.list_providers(&s.caller).await {
        Ok(p) => p,
        Err(e) => return fail(e, "/console/identity-providers"),
    };
    let mut pools = Vec::new();
    for p in &providers {
        for pool in st
            .iam
            .list_pools(&s.caller, &p.id)
            .await
            .unwrap_or_default()
        {
            pools.push((p.clone(), pool));
        }
    }
    let body = html! {
        (notices(q))
        @if let Some(t) = tested { (t) }
        @for p in &providers {
            section.card {
                h2 { (p.display_name) " " small.muted.mono { (p.id) } }
                dl.facts {
                    dt { "Issuer" } dd.mono { (p.issuer) }
                    dt { "Keys from" } dd.mono { (p.jwks_uri) }
                    dt { "Identity claim" } dd.mono { (p.identity_claim) }
                    dt { "State" } dd { span class={ "pill " (if p.enabled { "yes" } else { "no" }) } { (if p.enabled { "ENABLED" } else { "DISABLED" }) } }
                }
                h2.mt { "Identity pools" }
                table {
                    thead { tr { th { "Pool" } th { "Name" } th { "Filter" } th { "State" } } }
                    tbody {
                        @for (_, pool) in pools.iter().filter(|(pp, _)| pp.id == p.id) {
                            tr { td.mono { (pool.id) } td { (pool.display_name) } td.mono { (pool.filter) } td { (if pool.enabled { "ENABLED" } else { "DISABLED" }) } }
                        }
                    }
                }
                @if admin { form method="post" action={ "/console/identity-providers/" (p.id) "/pools" } {
                    (csrf_field(s))
                    div.row {
                        label { "New pool name" input type="text" name="display_name" required maxlength="64"; }
                        label { "Filter (CEL)" input type="text" name="filter" placeholder="'payments' in claims.groups"; }
                        div { button.secondary type="submit" { "Add pool" } }
                    }
                } }
            }
        }
        @if !pools.is_empty() {
            section.card {
                h2 { "Test a pool's filter" }
                form method="post" action="/console/identity-providers/test" {
                    (csrf_field(s))
                    label { "Pool" select name="pool" { @for (p, pool) in &pools { option value={ (p.id) "|" (pool.id) } { (pool.display_name) " (" (pool.id) ") · " (p.display_name) } } } }
                    label { "A sample token's claims (JSON)" textarea name="claims" placeholder=r#"{"sub": "payments-app", "groups": ["payments"]}"# { (field(q, "claims")) } }
                    button.secondary type="submit" { "Does the filter match?" }
                }
            }
        }
        @if admin { section.card {
            h2 { "Add an identity provider" }
            form method="post" action="/console/identity-providers" {
                (csrf_field(s))
                div.row {
                    label { "Name" input type="text" name="display_name" required maxlength="64"; }
                    label { "Issuer" input type="text" name="issuer" required placeholder="https://idp.example.com"; }
                }
                div.row {
                    label { "JWKS URI" small { "discovered from the issuer when empty" } input type="text" name="jwks_uri"; }
                    label { "Identity claim" input type="text" name="identity_claim" placeholder="claims.sub"; }
                }
                button type="submit" { "Add provider" }
            }
        } }
    };
    layout(st, s, "idp", "Identity providers", body)
}

pub(crate) async fn providers(State(st): State<ConsoleState>, s: Signed, Query(q): Q) -> Response {
    providers_page(&st, &s, &q, None).await
}

pub(crate) async fn create_provider(
    State(st): State<ConsoleState>,
    Posted(s, f): Posted,
) -> Response {
    let opt = |k: &str| Some(field(&f, k).to_owned()).filter(|v| !v.is_empty());
    let n = NewProvider {
        display_name: field(&f, "display_name").to_owned(),
        description: String::new(),
        issuer: field(&f, "issuer").to_owned(),
        jwks_uri: opt("jwks_uri"),
        identity_claim: opt("identity_claim"),
    };
    match st.iam.create_provider(&s.caller, n).await {
        Ok(p) => done(
            "/console/identity-providers",
            &format!("Identity provider {} ({}) added.", p.display_name, p.id),
        ),
        Err(e) => fail(e, "/console/identity-providers"),
    }
}

pub(crate) async fn create_pool(
    State(st): State<ConsoleState>,
    Path(id): Path<String>,
    Posted(s, f): Posted,
) -> Response {
    let n = NewPool {
        display_name: field(&f, "display_name").to_owned(),
        description: String::new(),
        identity_claim: None,
        filter: Some(field(&f, "filter").to_owned()).filter(|v| !v.is_empty()),
    };
    match st.iam.create_pool(&s.caller, &id, n).await {
        Ok(p) => done(
            "/console/identity-providers",
            &format!("Identity pool {} ({}) added.", p.display_name, p.id),
        ),
        Err(e) => fail(e, "/console/identity-providers"),
    }
}

pub(crate) async fn test_filter(State(st): State<ConsoleState>, Posted(s, f): Posted) -> Response {
    let (provider, pool_id) = field(&f, "pool").split_once('|').unwrap_or(("", ""));
    let mut q = HashMap::new();
    q.insert("claims".to_owned(), field(&f, "claims").to_owned());
    let verdict = match st
        .iam
        .test_pool_filter(&s.caller, provider, pool_id, field(&f, "claims"))
        .await
    {
        Err(e) => return fail(e, "/console/identity-providers"),
        Ok((_, Err(why))) => html! { div.notice.error role="alert" { (why) } },
        Ok((pool, Ok(true))) => {
            html! { div.notice.ok role="status" { "Matches: a token with these claims acts as " strong { (pool.display_name) } " (" code { (pool.id) } ")." } }
        }
        Ok((pool, Ok(false))) => {
            html! { div.notice.error role="status" { "No match: the filter " code { (pool.filter) } " is false for these claims." } }
        }
    };
    providers_page(&st, &s, &q, Some(verdict)).await
}

// ---- audit log ----------------------------------------------------------------------------

pub(crate) async fn audit(State(st): State<ConsoleState>, s: Signed, Query(q): Q) -> Response {
    let opt = |k: &str| {
        q.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let hours: i64 = q.get("since").and_then(|h| h.parse().ok()).unwrap_or(24);
    let query = AuditQuery {
        principal: opt("principal"),
        method: opt("method"),
        resource: opt("resource"),
        identifier: opt("key"),
        granted: match q.get("granted").map(String::as_str) {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        },
        start_time: Some(chrono::Utc::now() - chrono::Duration::hours(hours.clamp(1, 24 * 365))),
        before: q.get("before").and_then(|b| b.parse().ok()),
        descending: true,
        limit: 100,
        ..AuditQuery::default()
    };
    let rows = match st.iam.query_audit(&s.caller, &query).await {
        Ok(r) => r,
        Err(e) => return fail(e, "/console/audit"),
    };
    let more = rows.len() == 100;
    let next = rows.last().map(|r| r.seq);
    let mut keep: Vec<String> = q
        .iter()
        .filter(|(k, v)| k.as_str() != "before" && !v.is_empty())
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect();
    keep.sort();
    let g = field(&q, "granted");
    let body = html! {
        section.card {
            form method="get" action="/console/audit" {
                div.row {
                    label { "Principal" input type="text" name="principal" value=[q.get("principal")] placeholder="User:sa-…"; }
                    label { "Method" input type="text" name="method" value=[q.get("method")] placeholder="kafka.Authentication"; }
                    label { "Resource" small { "a trailing * matches by prefix" } input type="text" name="resource" value=[q.get("resource")]; }
                }
                div.row {
                    label { "API key" input type="text" name="key" value=[q.get("key")]; }
                    label { "Decision" select name="granted" { option value="" selected[g.is_empty()] { "Any" } option value="false" selected[g == "false"] { "Denied" } option value="true" selected[g == "true"] { "Allowed" } } }
                    label { "Since" select name="since" { @for (h, l) in [(1, "1 hour"), (24, "24 hours"), (168, "7 days"), (720, "30 days")] { option value=(h) selected[hours == h] { (l) } } } }
                    div { button type="submit" { "Filter" } }
                }
            }
        }
        section.card {
            table {
                thead { tr { th { "Time (UTC)" } th { "Method" } th { "Principal" } th { "Credential" } th { "Resource" } th { "Decision" } th { "Result" } th { "Client" } } }
                tbody {
                    @for r in &rows {
                        @let e = &r.event;
                        @let a = &e.data.authentication_info;
                        tr {
                            td { (e.time.format("%Y-%m-%d %H:%M:%S")) }
                            td.mono { (e.data.method_name) }
                            td.mono { (a.principal.clone().unwrap_or_default()) }
                            td.mono { (a.metadata.as_ref().map(|m| m.identifier.clone()).unwrap_or_default()) }
                            td.mono.wrap { (e.data.resource_name) }
                            td { @match e.granted() { Some(true) => span.pill.yes { "allowed" }, Some(false) => span.pill.no { "denied" }, None => "" } }
                            td { (e.data.result.status) @if let Some(m) = &e.data.result.message { br; small.muted { (m) } } }
                            td.mono { (e.data.request_metadata.as_ref().map(|m| m.client_address.clone()).unwrap_or_default()) }
                        }
                    }
                }
            }
            @if rows.is_empty() { p.muted { "No records match." } }
            div.pager {
                @if let (true, Some(n)) = (more, next) {
                    a href={ "/console/audit?" (keep.join("&")) "&before=" (n) } { "Older →" }
                }
            }
        }
    };
    layout(&st, &s, "audit", "Audit log", body)
}
