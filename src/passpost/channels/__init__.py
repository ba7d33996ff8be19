"""E-mail and SMS channels behind one small interface (``channels.base``).

- ``email``: ``SmtpConfig``, ``SmtpSender`` (pooled SMTP connections).
- ``sms``: ``make_sms_provider(url)`` → Twilio, Vonage, SMPP or log provider.
- ``templates``: ``render_email``, ``render_sms``, ``fit_sms`` (SPEC §1 placeholders).
- ``phone``: ``normalize_phone`` (E.164).
- ``service``: stored configuration (``/api/v1/mailconfig``, ``/api/v1/smsconfig``) and
  the settings in force (``effective_smtp_config``, ``effective_sms_url``).
"""
