"""CHANGED on real publishes: a republish with no change to the listed fields sends nothing."""

from __future__ import annotations

import pytest

from tests.testapp.models import Advert

pytestmark = pytest.mark.django_db(transaction=True)


def test_changed_ignores_a_republish_with_no_change_to_its_fields(multisite, destinations, routed):
    s = multisite
    destinations(intro={"CHANGED": ["intro"]}, title={"CHANGED": ["title"]}, everything={})
    published = {("page.published", str(s.post.pk))}
    s.post.save_revision().publish()  # a first publish: every CHANGED destination
    assert routed() == {"intro": published, "title": published, "everything": published}

    post = s.refreshed(s.post)
    post.title = "A better title"
    post.save_revision().publish()
    assert routed() == {"title": published, "everything": published}

    post = s.refreshed(s.post)
    post.intro = "A better intro"
    post.save_revision().publish()
    assert routed() == {"intro": published, "everything": published}

    s.refreshed(s.post).save_revision().publish()  # nothing changed
    assert routed() == {"everything": published}


def test_changed_on_snippets(multisite, destinations, routed):
    destinations(text={"CHANGED": ["text"], "EVENTS": ["snippet.published"]})
    advert = Advert.objects.create(text="Sale", live=False)
    advert.save_revision().publish()
    published = {("snippet.published", str(advert.pk))}
    assert routed() == {"text": published}
    advert.save_revision().publish()  # nothing changed
    assert routed() == {}
    advert.text = "Bigger sale"
    advert.save_revision().publish()
    assert routed() == {"text": published}


def test_changed_matches_a_publish_whose_changes_cannot_be_known(multisite, destinations, routed):
    """A page published before Wagtail logged publishes: what changed is unknown (``null``), and
    a CHANGED destination is sent it rather than miss it."""
    from wagtail.models import PageLogEntry

    s = multisite
    destinations(title={"CHANGED": ["title"]})
    s.post.save_revision().publish()
    routed()
    PageLogEntry.objects.filter(page=s.post).delete()  # as if published before the log existed
    post = s.refreshed(s.post)
    post.intro = "A better intro"
    post.save_revision().publish()
    assert routed() == {"title": {("page.published", str(s.post.pk))}}
