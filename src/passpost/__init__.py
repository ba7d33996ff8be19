"""passpost: self-hosted Apple Wallet pass distribution."""

__version__ = "0.1.0"
