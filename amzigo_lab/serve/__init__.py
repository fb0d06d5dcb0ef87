"""Serving: Voila dashboards for sellers and JupyterLab for analysts, behind the project's login.

- `identity`: a `jupyter_server` IdentityProvider over the governance IdentityStore (password +
  TOTP, lockout, audit, expiring sessions, logout).
- `hooks`: Voila's pre-launch hook: the seller's tenant from their user record into the
  notebook's `parameters` cell, 403 (no kernel) for anybody else.
- `kernels`: kernel ownership (kernel manager + Authorizer + shutdown handler) and a kernel
  environment without secrets.
- `tls`: the local certificate and the TLS 1.2+ context; no plain HTTP beyond localhost.
- `app`: the Voila and JupyterLab launchers used by `amzigo dashboard` and `amzigo lab`.
- `dashboard`: what the seller dashboard notebook calls inside its kernel.
"""
