"""The forms of watching: an editor's watch of one page or snippet, and their preferences."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from ...conf import raw_settings
from ...subscription_models import Channel, NotificationPreferences

THIS_PAGE = "page"
SUBTREE = "subtree"


class WatchForm(forms.Form):
    """Which events of one object to be told about (and, for a page, whether its subpages too)."""

    scope = forms.ChoiceField(
        label=_("Watch"),
        choices=[(THIS_PAGE, _("This page")), (SUBTREE, _("This page and its subpages"))],
        widget=forms.RadioSelect,
        initial=THIS_PAGE,
    )
    events = forms.MultipleChoiceField(
        label=_("Tell me when it is"), widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, events: Any, with_scope: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        events_field = self.fields["events"]
        assert isinstance(events_field, forms.ChoiceField)
        events_field.choices = list(events)
        if not with_scope:
            del self.fields["scope"]


def slack_bot_configured() -> bool:
    return bool(raw_settings().get("SLACK_BOT"))


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = NotificationPreferences
        fields = ["channel", "frequency", "skip_own_actions"]
        widgets = {"channel": forms.RadioSelect, "frequency": forms.RadioSelect}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not slack_bot_configured():
            # Without a bot, Slack cannot reach anyone: only email is offered.
            channel = self.fields["channel"]
            assert isinstance(channel, forms.ChoiceField)
            channel.choices = [(Channel.EMAIL.value, Channel.EMAIL.label)]
            # Slack chosen while a bot was configured: shown (and saved) as email, so that the
            # account settings can still be saved.
            if self.initial.get("channel") == Channel.SLACK:
                self.initial["channel"] = Channel.EMAIL.value
