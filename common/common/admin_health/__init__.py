"""The health panel at the top of every service's Django admin index.

Installed as the app `common.admin_health`, listed before the admin in INSTALLED_APPS so that its
`admin/index.html` (which extends Django's) is the one found. The checks are in `checks.py`:
database and broker (common.health's probes), the outbox backlog where `common.outbox` is
installed, then whatever the service lists in ADMIN_HEALTH_CHECKS.
"""
