//! REST request bodies: every request shape the API deserializes takes any bytes and
//! either yields a value or an error — never a panic, never an unbounded allocation.
//! The first byte picks the shape.
#![no_main]

use keygate_api::{certificates as c, quotas as q, types as t};
use libfuzzer_sys::fuzz_target;

macro_rules! shapes {
    ($pick:expr, $body:expr, $($ty:ty),+ $(,)?) => {{
        let all: &[fn(&[u8]) -> bool] = &[$(|b| serde_json::from_slice::<$ty>(b).is_ok()),+];
        let _ = all[usize::from($pick) % all.len()]($body);
    }};
}

fuzz_target!(|data: &[u8]| {
    let [pick, body @ ..] = data else {
        return;
    };
    shapes!(
        *pick,
        body,
        t::IdIn,
        t::EnvironmentCreate,
        t::EnvironmentUpdate,
        t::ClusterCreate,
        t::ClusterUpdate,
        t::ServiceAccountCreate,
        t::ServiceAccountUpdate,
        t::UserCreate,
        t::PasswordSet,
        t::UserUpdate,
        t::ApiKeyCreate,
        t::ApiKeyUpdate,
        t::RoleBindingCreate,
        t::AclCreate,
        t::AclBatch,
        t::OrganizationUpdate,
        t::IdentityProviderCreate,
        t::IdentityProviderUpdate,
        t::IdentityPoolCreate,
        t::IdentityPoolUpdate,
        t::SigningKeyRotate,
        q::ClientQuotaIn,
        c::CertificateAuthorityIn,
        c::CertificatePoolIn,
    );
});
