"""Connection secrets: the cipher that encrypts them at rest (cipher), where they are kept
(store: encrypted in Postgres, or aws: AWS Secrets Manager, chosen by store.secret_store_for)."""
