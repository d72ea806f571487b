/// Every mustache template of the portal and the dashboard, by name. Pages extend `layout`
/// (`{{<layout}}{{$main}}...{{/main}}{{/layout}}`) and read their own view inside `{{#page}}`.
/// Views are read through `Mirror`: only stored properties are seen (flags such as `hasLines`
/// are stored, not computed). `{{ }}` escapes HTML; `{{{ }}}` is used only for SVG charts, which `BarChart` escapes itself.
enum Templates {
    static var all: [(String, String)] {
        [("layout", layout), ("message", message), ("token", token)] + PortalTemplates.all + DashboardTemplates.all
    }

    static let layout = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{chrome.title}} · Tollgate {{chrome.area}}</title>
<link rel="stylesheet" href="{{chrome.stylesheet}}">
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
{{#chrome}}
<header class="top"><div class="wrap">
<span class="brand">Tollgate<small>{{area}}</small></span>
{{#signOut}}<nav class="main" aria-label="Main"><ul>{{#nav}}<li><a href="{{href}}"{{#current}} aria-current="page"{{/current}}>{{label}}</a></li>{{/nav}}</ul></nav>{{/signOut}}
{{#signOut}}<form class="signout" method="post" action="{{signOut}}"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">Sign out</button></form>{{/signOut}}
</div></header>
{{/chrome}}
<main id="main" class="wrap">
{{#chrome.notice}}<p class="notice" role="status">{{chrome.notice}}</p>{{/chrome.notice}}
{{#chrome.error}}<p class="error" role="alert">{{chrome.error}}</p>{{/chrome.error}}
{{$main}}{{/main}}
</main>
<footer>Served by Tollgate</footer>
</body>
</html>
"""#

    /// A heading, a sentence and a way on.
    static let message = #"""
{{<layout}}{{$main}}{{#page}}
<h1>{{heading}}</h1>
<div class="card"><p>{{text}}</p>{{#linkHref}}<p><a class="button" href="{{linkHref}}">{{linkLabel}}</a></p>{{/linkHref}}</div>
{{/page}}{{/main}}{{/layout}}
"""#

    /// A token shown once (signup, rotation, a new subscription).
    static let token = #"""
{{<layout}}{{$main}}{{#page}}
<h1>{{heading}}</h1>
<div class="card">
<p>{{intro}}</p>
<h2 id="token-label">Your API token</h2>
<p class="secret" id="token" aria-labelledby="token-label">{{token}}</p>
<p class="muted">This is the only time it is shown. Keep it secret; Tollgate stores only its fingerprint.</p>
<h2 id="curl-label">Try it</h2>
<pre class="secret" id="curl" aria-labelledby="curl-label">{{curl}}</pre>
<p><a class="button" href="{{continueHref}}">{{continueLabel}}</a></p>
</div>
{{/page}}{{/main}}{{/layout}}
"""#
}

/// The view of `Templates.message`.
struct MessageView: Sendable {
    var heading: String
    var text: String
    var linkHref: String?
    var linkLabel: String = ""
}

/// The view of `Templates.token`.
struct TokenView: Sendable {
    var heading: String
    var intro: String
    var token: String
    var curl: String
    var continueHref: String
    var continueLabel: String
}
