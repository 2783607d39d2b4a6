"""The admin's servicing forms: what an operator enters to disburse, cancel, repay, write off or reverse.

They only parse input; the rules (dates, the payoff, the days past due) are the services' in servicing.py.
"""

import uuid
from decimal import Decimal

from django import forms
from django.contrib.admin.widgets import AdminDateWidget
from django.utils import timezone

NOTE = {"max_length": 500, "widget": forms.Textarea(attrs={"rows": 3, "cols": 60})}


class DisburseForm(forms.Form):
    date = forms.DateField(
        initial=timezone.localdate,
        widget=AdminDateWidget,
        help_text="The day it is paid out; the schedule runs from it.",
    )


class CancelForm(forms.Form):
    note = forms.CharField(required=False, help_text="Why it is cancelled (told to the customer).", **NOTE)


class RepaymentForm(forms.Form):
    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))
    date = forms.DateField(initial=timezone.localdate, widget=AdminDateWidget, help_text="The value date.")
    # A new one each time the form is rendered: a second POST of the same rendering is refused (see admin.py).
    token = forms.UUIDField(
        initial=uuid.uuid4,
        widget=forms.HiddenInput,
        error_messages={"required": "This form has expired: open it again.", "invalid": "Open the form again."},
    )


class WriteOffForm(forms.Form):
    note = forms.CharField(help_text="Why it is written off.", **NOTE)


class ReverseForm(forms.Form):
    note = forms.CharField(help_text="Why it is reversed (told to the customer).", **NOTE)
