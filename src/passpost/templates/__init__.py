"""Pass templates (SPEC §12): stored ``passContent`` objects with their images, the original
API's ``/api/v1/templates/passbook`` calls. A generated pass refers to their images by
``imageId``."""
