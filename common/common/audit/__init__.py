"""The audit trail every service keeps of its own decisions (docs/DESIGN.md, "Audit trail").

`record()` writes one append-only row in the caller's transaction; `common.audit.views.AuditListView`
lets admins read them. The models are imported lazily, so this package imports before Django is set up.
"""

from common.audit.recorder import FAILURE, SUCCESS, record

__all__ = ["FAILURE", "SUCCESS", "record"]
