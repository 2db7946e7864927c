"""The routing filters of a managed destination's form: sites, locales, sections, changed fields
and collections, stored as ids (sites, sections, collections), codes and names.

An admin user chooses only among what they may otherwise see: sections resolve through the
pages of their explorer, collections are those they hold an image or document permission on;
a stored value they cannot see (chosen by another user) is kept as it is, shown by its id only.
A page they may not see is refused with the same words as one that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from ...route_filters import as_url_path
from .fields import LinesField

#: The model fields of the filters, by destination key.
FILTER_FIELDS = {
    "SITES": "sites",
    "LOCALES": "locales",
    "SECTIONS": "sections",
    "CHANGED": "changed_fields",
    "COLLECTIONS": "collections",
}


def explorable_pages(user: Any) -> QuerySet | None:
    """The pages ``user`` may see in the explorer; ``None``: every page (no user: code)."""
    from wagtail.models import Page
    from wagtail.permission_policies.pages import PagePermissionPolicy

    if user is None:
        return None
    try:
        return PagePermissionPolicy().explorable_instances(user)
    except Exception:  # no page permission at all: Wagtail finds no common ancestor
        return Page.objects.none()


def visible_collections(user: Any) -> QuerySet:
    """The collections ``user`` holds an image or document permission on (every one with no
    user: code)."""
    from wagtail.documents import get_permission_policy as document_policy
    from wagtail.images import get_permission_policy as image_policy
    from wagtail.models import Collection

    if user is None:
        return Collection.objects.all()
    actions = ["add", "change", "choose"]
    ids = set(
        image_policy()
        .collections_user_has_any_permission_for(user, actions)
        .values_list("pk", flat=True)
    )
    ids |= set(
        document_policy()
        .collections_user_has_any_permission_for(user, actions)
        .values_list("pk", flat=True)
    )
    return Collection.objects.filter(pk__in=ids)


class SectionsField(LinesField):
    """Section pages, one per line: a page id or a url path (``/home/blog/``)."""


class RoutingFilters(forms.Form):
    """The filter fields; :meth:`set_up_filters` fills the choices for the user."""

    sites = forms.TypedMultipleChoiceField(
        label=_("Sites"),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Only events about pages of these sites. None ticked: every site."),
    )
    locales = forms.MultipleChoiceField(
        label=_("Languages"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Only events about pages (and snippets) in these languages. None: all."),
    )
    sections = SectionsField(
        label=_("Sections"),
        required=False,
        help_text=_(
            "Only events about these pages and the pages below them: one per line, a page id or "
            "its url path (such as /home/blog/). Stored as ids, so a section keeps matching when "
            "it is moved or renamed. Empty: every page."
        ),
    )
    changed_fields = LinesField(
        label=_("Changed fields"),
        required=False,
        help_text=_(
            "Field names, one per line (title, intro, body): a publish is sent only when one of "
            "them changed, or on a first publish. Empty: every publish."
        ),
    )
    collections = forms.TypedMultipleChoiceField(
        label=_("Collections"),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Only events about images and documents in these collections (or below)."),
    )

    def set_up_filters(self, user: Any, stored: Any) -> None:
        from wagtail.coreutils import get_content_languages
        from wagtail.models import Site

        self.filter_user = user
        self.stored_sections = (
            {item for item in (stored.sections or []) if isinstance(item, int)}
            if stored.pk is not None
            else set()
        )
        self.fields["sites"].choices = [  # type: ignore[attr-defined]
            (
                site.pk,
                f"{site.hostname}:{site.port}" if site.port not in (80, 443) else site.hostname,
            )
            for site in Site.objects.order_by("hostname", "port")
        ]
        languages = dict(get_content_languages())
        for code in stored.locales or []:
            languages.setdefault(code, code)
        self.fields["locales"].choices = sorted(languages.items())  # type: ignore[attr-defined]
        shown = list(visible_collections(user).order_by("path"))
        choices: list[tuple[int, str]] = [
            (collection.pk, collection.get_indented_name(indentation_start_depth=1) or "")
            for collection in shown
        ]
        hidden = [
            pk
            for pk in stored.collections or []
            if isinstance(pk, int) and pk not in {c.pk for c in shown}
        ]
        choices += [(pk, _("Collection %(id)s (not shown to you)") % {"id": pk}) for pk in hidden]
        self.fields["collections"].choices = choices  # type: ignore[attr-defined]
        if stored.pk is not None and stored.sections:
            self.initial["sections"] = self._sections_as_lines(stored.sections)

    def _sections_as_lines(self, sections: Iterable[Any]) -> list[str]:
        """Stored section ids, as the url paths of the pages the user can see, ids otherwise."""
        visible = explorable_pages(self.filter_user)
        from wagtail.models import Page

        pages = visible if visible is not None else Page.objects.all()
        ids = [item for item in sections if isinstance(item, int)]
        paths = dict(pages.filter(pk__in=ids).values_list("pk", "url_path"))
        return [
            paths.get(item, str(item)) if isinstance(item, int) else str(item) for item in sections
        ]

    def clean_sections(self) -> list[int] | None:
        lines = self.cleaned_data.get("sections")
        if not lines:
            return None
        visible = explorable_pages(self.filter_user)
        from wagtail.models import Page

        pages = visible if visible is not None else Page.objects.all()
        resolved: list[int] = []
        errors = []
        for line in lines:
            if line.isdigit() and int(line) in self.stored_sections:
                found: int | None = int(line)  # kept as it was, even if hidden from this user
            elif line.isdigit():
                found = pages.filter(pk=int(line)).values_list("pk", flat=True).first()
            else:
                found = (
                    pages.filter(url_path=as_url_path(line)).values_list("pk", flat=True).first()
                )
            if found is None:
                errors.append(
                    _(
                        "No page “%(line)s” that you can see: enter a page id or a url path such "
                        "as /home/blog/."
                    )
                    % {"line": line[:200]}
                )
            elif found not in resolved:
                resolved.append(found)
        if errors:
            raise forms.ValidationError(errors)
        return resolved

    def clean_sites(self) -> list[int] | None:
        return list(self.cleaned_data.get("sites") or []) or None

    def clean_locales(self) -> list[str] | None:
        return list(self.cleaned_data.get("locales") or []) or None

    def clean_collections(self) -> list[int] | None:
        return list(self.cleaned_data.get("collections") or []) or None

    def filter_values(self) -> dict[str, Any]:
        """The model fields of the filters, from the cleaned data."""
        return {name: self.cleaned_data.get(name) for name in FILTER_FIELDS.values()}
