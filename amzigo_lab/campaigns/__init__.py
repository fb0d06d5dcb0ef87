"""Review-request campaigns: Amazon's "request a review" solicitation, sent by itself.

`rules` reads the per-tenant rules (`[campaigns."<tenant>"]` in config.toml), `store` keeps the
service-side state (intents and outcomes, `<home>/state/campaigns.sqlite`), `engine` plans (why
each order is in or out) and runs (reconcile, then intent -> call -> outcome per order).
"""

from amzigo_lab.campaigns.engine import PURPOSE, Decision, RunReport, plan, run, status
from amzigo_lab.campaigns.rules import Rules, load_rules
from amzigo_lab.campaigns.store import CampaignStore

__all__ = [
    "PURPOSE",
    "CampaignStore",
    "Decision",
    "Rules",
    "RunReport",
    "load_rules",
    "plan",
    "run",
    "status",
]
