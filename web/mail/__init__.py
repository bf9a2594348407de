"""Mail: messages queued in the database's outbox and delivered through SMTP in the background.

:class:`~web.mail.mailer.Mailer` is what features call (``send``, ``send_at_most_every``; its
``enabled`` is False without ``IMAGESHARK_SMTP_URL``, and they answer ``503
mail_unavailable``); :mod:`web.mail.outbox` is its SQL; :class:`~web.mail.sender.MailSender`
is each replica's background task that delivers due mail with :mod:`web.mail.smtp`.
"""
