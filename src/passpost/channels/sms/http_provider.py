"""The shape the HTTP SMS providers share: one pooled client, a form POST, receipts by webhook."""

from __future__ import annotations

from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import httpx

from passpost.channels.base import ReceiptCallback
from passpost.channels.sms.common import response_json, transport_error


class HttpProviderConfig(Protocol):
    """What the base needs of a provider's parsed URL."""

    @property
    def api_base(self) -> str: ...

    @property
    def timeout(self) -> float: ...

    @classmethod
    def from_url(cls, url: str, *, public_url: str | None = None) -> Self: ...


ConfigT = TypeVar("ConfigT", bound=HttpProviderConfig)


class HttpSmsProvider(Generic[ConfigT]):
    """Base of an ``SmsProvider`` over a JSON REST API; subclasses implement ``send``."""

    name: str
    # The provider's name in error messages ("Twilio unreachable ...").
    label: ClassVar[str]
    config_type: ClassVar[type[Any]]

    def __init__(
        self,
        config: ConfigT,
        *,
        on_receipt: ReceiptCallback | None = None,
        default_region: str = "US",
    ) -> None:
        self.config = config
        self.default_region = default_region
        # Receipts reach passpost over HTTP (the webhook), not through this object.
        self.on_receipt = on_receipt
        self._client = httpx.AsyncClient(
            base_url=config.api_base,
            auth=self._auth(),
            timeout=config.timeout,
            headers={"Accept": "application/json"},
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        on_receipt: ReceiptCallback | None = None,
        public_url: str | None = None,
        default_region: str = "US",
    ) -> Self:
        """Build from the provider's URL (its config class parses it)."""
        config = cls.config_type.from_url(url, public_url=public_url)
        return cls(config, on_receipt=on_receipt, default_region=default_region)

    def _auth(self) -> tuple[str, str] | None:
        """HTTP Basic credentials for every request, when the API wants them there."""
        return None

    async def _post_form(
        self, path: str, form: dict[str, str]
    ) -> tuple[httpx.Response, dict[str, Any]]:
        """POST a form; a network failure is transient. The body as a JSON object, or ``{}``."""
        try:
            response = await self._client.post(path, data=form)
        except httpx.HTTPError as exc:
            raise transport_error(self.label, exc) from exc
        return response, response_json(response)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
