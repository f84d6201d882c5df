-- keygate schema, version 8: certificate authorities (mTLS client authentication) are
-- identity providers whose pools match client certificates instead of tokens. JSON
-- (chain, file name, CRL); NULL for OAuth providers.
ALTER TABLE identity_providers ADD COLUMN certificate TEXT;
