"""Page and snippet models the tests publish."""

from django.db import models
from modelcluster.fields import ParentalKey
from wagtail import blocks
from wagtail.api import APIField
from wagtail.fields import RichTextField, StreamField
from wagtail.images import get_image_model_string
from wagtail.images.blocks import ImageChooserBlock
from wagtail.images.models import AbstractImage, AbstractRendition, Image
from wagtail.models import DraftStateMixin, Orderable, Page, RevisionMixin
from wagtail.snippets.models import register_snippet


class BasePage(Page):
    """A base class: destinations filtered to it must receive its subclasses too."""

    body = RichTextField(blank=True)


class BlogIndexPage(Page):
    pass


class BlogPage(BasePage):
    intro = models.CharField(max_length=255, blank=True)

    # What Wagtail's API v2 shows, and so INCLUDE ["api"] too.
    api_fields = [APIField("intro"), APIField("body")]


class EventPage(BasePage):
    starts_at = models.DateTimeField(null=True, blank=True)


class OtherPage(Page):
    """Not a BasePage: destinations filtered to BasePage must not receive it."""


@register_snippet
class Advert(DraftStateMixin, RevisionMixin, models.Model):
    text = models.CharField(max_length=255)

    def __str__(self) -> str:
        return self.text


class PromoPage(Page):
    """Links to pages and shows an advert (``ReferenceIndex``); has a feed to purge."""

    body = RichTextField(blank=True)
    advert = models.ForeignKey(
        Advert, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def get_publish_hooks_purge_urls(self):
        """Its feed: a URL only the site knows, purged with the page."""
        return [f"/feeds/promo-{self.pk}.xml"]


class MediaPage(Page):
    """Shows an image and links a document, by foreign key and in a StreamField
    (``ReferenceIndex`` records both): a media event purges it."""

    subtitle = models.CharField(max_length=255, blank=True)
    image = models.ForeignKey(
        get_image_model_string(), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    document = models.ForeignKey(
        "wagtaildocs.Document", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = StreamField(
        [("text", blocks.RichTextBlock()), ("image", ImageChooserBlock())],
        blank=True,
    )


class LinksPage(Page):
    """A page with an ``InlinePanel``-style child relation (its links, an orderable): a publish
    names the relation when one of them changed."""

    intro = models.CharField(max_length=255, blank=True)


class LinksPageLink(Orderable):
    page = ParentalKey(LinksPage, on_delete=models.CASCADE, related_name="links")
    title = models.CharField(max_length=255)
    url = models.URLField()


class CustomImage(AbstractImage):
    """An image model of the site's own: media events cover it as they cover Wagtail's."""

    credit = models.CharField(max_length=255, blank=True)

    admin_form_fields = (*Image.admin_form_fields, "credit")


class CustomRendition(AbstractRendition):
    image = models.ForeignKey(CustomImage, on_delete=models.CASCADE, related_name="renditions")

    class Meta:
        unique_together = (("image", "filter_spec", "focal_point_key"),)
