"""Calls: the live list (and its stream), one call with its events, SMS
conversations."""
