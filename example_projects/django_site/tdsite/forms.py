from __future__ import annotations

from django import forms

TOPICS = [("order", "An order"), ("product", "A product"), ("other", "Something else")]


class ContactForm(forms.Form):
    email = forms.EmailField()
    topic = forms.ChoiceField(choices=TOPICS)
    message = forms.CharField(widget=forms.Textarea, max_length=2000)
