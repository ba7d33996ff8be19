"""The pass itself: ``WalletPass`` and its ``PassVersion``s, how a version is made (signing),
stored (``service``), announced (the update ``clock``) and served (``latest``).

Below the domains: it imports only ``pkpass`` and the bottom modules. Whoever calls it
(distribution, passkit, certs) brings what it needs, e.g. the signing material.
"""
