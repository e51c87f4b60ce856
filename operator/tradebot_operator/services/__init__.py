"""The operator's clients of systems other than the Kubernetes API (Vault/OpenBao)."""
