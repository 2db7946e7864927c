from wagtail.admin.panels import FieldPanel
from wagtail.fields import RichTextField
from wagtail.models import Page


class HomePage(Page):
    """The site's root page: a short introduction and links to the blog and the inspector."""

    intro = RichTextField(blank=True)

    content_panels = [*Page.content_panels, FieldPanel("intro")]

    subpage_types = ["blog.BlogIndexPage"]
    max_count = 1

    def get_context(self, request, *args, **kwargs):
        from blog.models import BlogIndexPage

        context = super().get_context(request, *args, **kwargs)
        context["blog_indexes"] = BlogIndexPage.objects.child_of(self).live()
        return context
