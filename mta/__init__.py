"""qmail 1.03 in Python: the queue, delivery, SMTP and POP3 programs."""
