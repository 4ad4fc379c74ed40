"""The well-known development-storage account (UseDevelopmentStorage=true)."""

DEV_ACCOUNT = "devstoreaccount1"
# Published in Microsoft's Azurite documentation; it opens only local emulators.
DEV_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
DEV_ENDPOINT = "http://127.0.0.1:10000/devstoreaccount1"
