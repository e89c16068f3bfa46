-- The ledger keeps the ACL itself, not only its version: the version guard's permission register
-- is (acl_version, acl), so a content write that carries an older ACL is given the newest one.

-- Up Migration

ALTER TABLE vecsync.sync_state ADD COLUMN acl text[] NOT NULL DEFAULT '{}';

-- Down Migration

ALTER TABLE vecsync.sync_state DROP COLUMN acl;
