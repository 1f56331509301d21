"""Notifications for people: what an outcome, a live call event or an alert says in
words (``notices``), and how each kind of receiver wants it (``formats``: Slack
Block Kit, a Teams Adaptive Card, an email), sent over ``smtp`` for email."""
