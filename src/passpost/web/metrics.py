"""``GET /metrics``: Prometheus text exposition of the ledger (operators only)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from sqlalchemy import func, select

from passpost.auth.deps import OperatorDep
from passpost.distribution.models import Delivery, DistributionRequest, WalletPass
from passpost.web.deps import SessionDep

router = APIRouter(tags=["ops"])


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(session: SessionDep, _: OperatorDep) -> str:
    """Deliveries per channel and state, requests and passes, in Prometheus text format."""
    lines = [
        "# HELP passpost_deliveries Deliveries in the ledger by channel and state.",
        "# TYPE passpost_deliveries gauge",
    ]
    rows = session.execute(
        select(Delivery.channel, Delivery.state, func.count()).group_by(
            Delivery.channel, Delivery.state
        )
    )
    for channel, state, count in rows:
        lines.append(f'passpost_deliveries{{channel="{channel}",state="{state}"}} {count}')
    requests = session.scalar(select(func.count()).select_from(DistributionRequest)) or 0
    passes = session.scalar(select(func.count()).select_from(WalletPass)) or 0
    lines += [
        "# HELP passpost_requests_total Distribution requests ever accepted.",
        "# TYPE passpost_requests_total counter",
        f"passpost_requests_total {requests}",
        "# HELP passpost_passes Passes stored.",
        "# TYPE passpost_passes gauge",
        f"passpost_passes {passes}",
    ]
    return "\n".join(lines) + "\n"
