//! Feeds as plain data: a [`Feed`] of [`Entry`]s rendered to Atom (RFC 4287), and a list of
//! playable items rendered to an extended M3U playlist. Nothing here knows the store or HTTP:
//! the feed routes build entries from captures, and any other source (lifecycle events) can
//! be rendered by passing its own entries.

use super::dto::rfc3339;

/// One link of an entry or a feed; `href` is absolute.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// `alternate`, `enclosure`, `related`, `self`.
    pub rel: &'static str,
    pub href: String,
    pub media_type: Option<&'static str>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// A stable URI (`urn:vodprobe:...`): readers use it to tell new entries from old.
    pub id: String,
    pub title: String,
    /// Unix seconds of the last change readers should notice.
    pub updated: i64,
    pub published: Option<i64>,
    pub author: String,
    pub links: Vec<Link>,
    /// Plain text.
    pub summary: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Feed {
    pub id: String,
    pub title: String,
    /// The feed's own absolute URL (`rel="self"`).
    pub self_url: String,
    /// The web page showing the same thing (`rel="alternate"`).
    pub alternate_url: String,
    /// Newest first.
    pub entries: Vec<Entry>,
    /// When the feed is empty, the time to give as `updated` (the feed's creation is unknown).
    pub empty_updated: i64,
}

impl Feed {
    /// The latest `updated` of its entries: the feed's `updated` and `Last-Modified`.
    pub fn updated(&self) -> i64 {
        self.entries
            .iter()
            .map(|entry| entry.updated)
            .max()
            .unwrap_or(self.empty_updated)
    }
}

/// Text as XML 1.0 character data: the five markup characters escaped, and the characters
/// XML 1.0 forbids outright (C0 controls but tab/LF/CR, surrogates cannot occur in `str`,
/// U+FFFE/U+FFFF) dropped, since no escape makes them legal.
pub fn xml_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The feed as an Atom document.
pub fn atom(feed: &Feed) -> String {
    let mut out = String::with_capacity(1024 + feed.entries.len() * 1024);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    element(&mut out, 1, "id", &feed.id);
    element(&mut out, 1, "title", &feed.title);
    element(&mut out, 1, "updated", &rfc3339(feed.updated()));
    out.push_str("  <generator>vodprobe</generator>\n");
    link(
        &mut out,
        1,
        &Link {
            rel: "self",
            href: feed.self_url.clone(),
            media_type: Some("application/atom+xml"),
        },
    );
    link(
        &mut out,
        1,
        &Link {
            rel: "alternate",
            href: feed.alternate_url.clone(),
            media_type: Some("text/html"),
        },
    );
    // RFC 4287 wants an author on the feed unless every entry has one; this names the source.
    out.push_str("  <author><name>vodprobe</name></author>\n");
    for entry in &feed.entries {
        out.push_str("  <entry>\n");
        element(&mut out, 2, "id", &entry.id);
        element(&mut out, 2, "title", &entry.title);
        element(&mut out, 2, "updated", &rfc3339(entry.updated));
        if let Some(published) = entry.published {
            element(&mut out, 2, "published", &rfc3339(published));
        }
        out.push_str("    <author><name>");
        out.push_str(&xml_text(&entry.author));
        out.push_str("</name></author>\n");
        for each in &entry.links {
            link(&mut out, 2, each);
        }
        element(&mut out, 2, "summary", &entry.summary);
        out.push_str("  </entry>\n");
    }
    out.push_str("</feed>\n");
    out
}

fn element(out: &mut String, depth: usize, name: &str, text: &str) {
    out.push_str(&"  ".repeat(depth));
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(&xml_text(text));
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

fn link(out: &mut String, depth: usize, link: &Link) {
    out.push_str(&"  ".repeat(depth));
    out.push_str("<link rel=\"");
    out.push_str(link.rel);
    out.push_str("\" href=\"");
    out.push_str(&xml_text(&link.href));
    out.push('"');
    if let Some(media_type) = link.media_type {
        out.push_str(" type=\"");
        out.push_str(media_type);
        out.push('"');
    }
    out.push_str("/>\n");
}

/// One item of an M3U playlist: a playable URL, its length and a title.
#[derive(Clone, Debug, PartialEq)]
pub struct PlaylistItem {
    pub seconds: f64,
    pub title: String,
    pub url: String,
}

/// An extended M3U (`#EXTM3U`, `#EXTINF:<seconds>,<title>`, URL) as VLC, Kodi and Jellyfin read
/// it. A title is one line: line breaks and other controls become spaces, so a title cannot
/// add a line the player would take as a URL or a directive.
pub fn m3u(items: &[PlaylistItem]) -> String {
    let mut out = String::from("#EXTM3U\n");
    for item in items {
        let title: String = item
            .title
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        out.push_str(&format!(
            "#EXTINF:{},{}\n{}\n",
            item.seconds.round().max(0.0) as u64,
            title.trim(),
            item.url
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(title: &str) -> Entry {
        Entry {
            id: "urn:vodprobe:capture:1:2".into(),
            title: title.into(),
            updated: 1_700_000_000,
            published: Some(1_699_990_000),
            author: "a&b".into(),
            links: vec![Link {
                rel: "enclosure",
                href: "http://h/vods/1/2.m3u8?a=1&b=2".into(),
                media_type: Some("application/vnd.apple.mpegurl"),
            }],
            summary: "found".into(),
        }
    }

    #[test]
    fn markup_is_escaped_and_forbidden_characters_dropped() {
        assert_eq!(
            xml_text("<script>&\"'\u{0}\u{8}\u{1b}\t\n\u{FFFF}é"),
            "&lt;script&gt;&amp;&quot;&apos;\t\né"
        );
    }

    #[test]
    fn atom_carries_entries_links_and_the_latest_update() {
        let mut older = entry("older");
        older.updated = 1_600_000_000;
        let feed = Feed {
            id: "urn:vodprobe:feed:captures".into(),
            title: "captures".into(),
            self_url: "http://h/feeds/captures.atom".into(),
            alternate_url: "http://h/#/".into(),
            entries: vec![entry("<b>&\u{7}"), older],
            empty_updated: 0,
        };
        let xml = atom(&feed);
        assert!(
            xml.contains("<updated>2023-11-14T22:13:20Z</updated>\n  <generator>"),
            "{xml}"
        );
        assert!(xml.contains("<title>&lt;b&gt;&amp;</title>"), "{xml}");
        assert!(
            xml.contains("href=\"http://h/vods/1/2.m3u8?a=1&amp;b=2\""),
            "{xml}"
        );
        assert!(xml.contains("<name>a&amp;b</name>"), "{xml}");
        assert_eq!(xml.matches("<entry>").count(), 2);
        let empty = Feed {
            entries: Vec::new(),
            empty_updated: 5,
            ..feed
        };
        assert!(atom(&empty).contains("<updated>1970-01-01T00:00:05Z</updated>"));
    }

    #[test]
    fn m3u_titles_stay_on_their_line() {
        let text = m3u(&[PlaylistItem {
            seconds: 3599.6,
            title: "a\nhttp://evil\r\n#EXT-X".into(),
            url: "http://h/vods/1/2.m3u8".into(),
        }]);
        assert_eq!(
            text,
            "#EXTM3U\n#EXTINF:3600,a http://evil  #EXT-X\nhttp://h/vods/1/2.m3u8\n"
        );
    }
}
