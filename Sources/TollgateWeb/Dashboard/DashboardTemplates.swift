/// The operator dashboard's templates (see `Templates`).
enum DashboardTemplates {
    static var all: [(String, String)] {
        [("dash-sign-in", signIn), ("dash-overview", overview), ("dash-customers", customers), ("dash-customer", customer),
         ("dash-subscription", subscription), ("dash-invoices", invoices), ("dash-invoice", invoice),
         ("dash-webhooks", webhooks), ("dash-catalog", catalog)]
    }

    static let signIn = #"""
{{<layout}}{{$main}}{{#page}}
<h1>Sign in</h1>
<form class="card" method="post" action="/dashboard/sign-in">
<label for="key">Admin key</label>
<input type="password" id="key" name="key" required autocomplete="current-password">
<p class="muted">The key in <code>TOLLGATE_ADMIN_KEY</code>, or the one generated into the data directory.</p>
<p><button type="submit">Sign in</button></p>
</form>
{{/page}}{{/main}}{{/layout}}
"""#

    static let overview = #"""
{{<layout}}{{$main}}{{#page}}
<h1>Overview</h1>
<div class="grid">
<div class="card"><p class="stat-label">Active subscriptions</p><p class="stat" id="active-subscriptions">{{active}}</p></div>
<div class="card"><p class="stat-label">Calls in the last 30 days</p><p class="stat">{{calls}}</p></div>
<div class="card"><p class="stat-label"><a href="/dashboard/webhooks?status=failed">Failing webhooks</a></p><p class="stat">{{failingWebhooks}}</p></div>
<div class="card"><p class="stat-label"><a href="/dashboard/invoices?status=finalized">Past-due invoices</a></p><p class="stat">{{pastDue}}</p><p class="muted">finalized, unpaid for more than {{pastDueDays}} days</p></div>
</div>
<section class="card" aria-labelledby="calls-h"><h2 id="calls-h">Calls per day</h2>{{{callsChart}}}</section>
<section class="card" aria-labelledby="revenue-h"><h2 id="revenue-h">Revenue per month</h2>
{{#revenue}}<h3>{{currency}}</h3>{{{chart}}}{{/revenue}}
{{^revenue}}<p class="muted">No finalized or paid invoices yet.</p>{{/revenue}}
</section>
{{/page}}{{/main}}{{/layout}}
"""#

    static let customers = #"""
{{<layout}}{{$main}}{{#page}}
<h1>Customers</h1>
<section class="card" aria-labelledby="list-h">
<h2 id="list-h">All customers</h2>
<table><thead><tr><th scope="col">Name</th><th scope="col">Id</th><th scope="col">E-mail</th><th scope="col">Created</th></tr></thead>
<tbody>{{#customers}}<tr><td><a href="{{href}}">{{name}}</a></td><td>{{id}}</td><td>{{email}}</td><td>{{created}}</td></tr>{{/customers}}</tbody></table>
{{^customers}}<p class="muted">No customers yet.</p>{{/customers}}
{{#next}}<p><a href="{{next}}">Next page</a></p>{{/next}}
</section>
<form class="card" method="post" action="/dashboard/customers">
<h2>New customer</h2>
<input type="hidden" name="csrf" value="{{csrf}}">
<label for="c-name">Name</label><input type="text" id="c-name" name="name" required maxlength="200">
<label for="c-email">E-mail (optional)</label><input type="email" id="c-email" name="email" maxlength="254">
<p><button type="submit">Create customer</button></p>
</form>
{{/page}}{{/main}}{{/layout}}
"""#

    static let customer = #"""
{{<layout}}{{$main}}{{#page}}
<h1>{{name}}</h1>
<p class="lead">Customer {{id}}{{#email}} · {{email}}{{/email}}</p>
<section class="card" aria-labelledby="subs-h">
<h2 id="subs-h">Subscriptions</h2>
<table><thead><tr><th scope="col">Subscription</th><th scope="col">Plan</th><th scope="col">Product</th><th scope="col">Status</th><th scope="col">Period</th></tr></thead>
<tbody>{{#subscriptions}}<tr><td><a href="{{href}}">{{id}}</a></td><td>{{planName}}</td><td>{{product}}</td><td><span class="status {{status}}">{{status}}</span></td><td>{{periodStart}} – {{periodEnd}}</td></tr>{{/subscriptions}}</tbody></table>
{{^subscriptions}}<p class="muted">No subscriptions.</p>{{/subscriptions}}
</section>
<div class="grid">
<form class="card" method="post" action="{{base}}/subscriptions">
<h2>Subscribe to a plan</h2>
<input type="hidden" name="csrf" value="{{csrf}}">
<label for="s-plan">Plan</label>
<select id="s-plan" name="plan">{{#plans}}<option value="{{id}}">{{name}} ({{product}})</option>{{/plans}}</select>
<p><button type="submit">Create subscription</button></p>
</form>
<form class="card" method="post" action="{{base}}/portal-link">
<h2>Portal sign-in link</h2>
<input type="hidden" name="csrf" value="{{csrf}}">
<p class="muted">A one-time link that signs this customer in to the portal, valid for an hour.</p>
<p><button type="submit" class="secondary">Make a link</button></p>
</form>
</div>
{{/page}}{{/main}}{{/layout}}
"""#

    static let subscription = #"""
{{<layout}}{{$main}}{{#page}}
{{#card}}
<h1>{{planName}} <span class="muted">· {{product}}</span> <span class="status {{status}}">{{status}}</span></h1>
<p class="lead">Subscription {{id}} of <a href="/dashboard/customers/{{customer}}">{{customer}}</a> · current period {{periodStart}} – {{periodEnd}}</p>
{{/card}}
<section class="card" aria-labelledby="usage-h">
<h2 id="usage-h">Usage explorer</h2>
<p class="filters">Range: {{#ranges}}<a href="{{href}}"{{#current}} aria-current="page"{{/current}}>{{label}}</a>{{/ranges}}</p>
{{#usage}}
{{{chart}}}
<div class="grid">
<div><h3>Calls per endpoint</h3>
<table><thead><tr><th scope="col">Endpoint</th><th scope="col" class="num">Billable calls</th></tr></thead>
<tbody>{{#endpoints}}<tr><td>{{name}}</td><td class="num">{{value}}</td></tr>{{/endpoints}}</tbody></table></div>
{{#hasMeters}}<div><h3>Meters</h3>
<table><thead><tr><th scope="col">Meter</th><th scope="col" class="num">Value</th></tr></thead>
<tbody>{{#meters}}<tr><td>{{name}}</td><td class="num">{{value}}</td></tr>{{/meters}}</tbody></table></div>{{/hasMeters}}
</div>
<p class="muted">From {{from}} to {{to}}.</p>
{{/usage}}
</section>
<section class="card" aria-labelledby="estimate-h">
<h2 id="estimate-h">Usage charges so far this period</h2>
{{#estimate}}
<table><thead><tr><th scope="col">Usage</th><th scope="col" class="num">Quantity</th><th scope="col" class="num">Amount</th></tr></thead>
<tbody>{{#lines}}<tr><td>{{description}}</td><td class="num">{{quantity}}</td><td class="num">{{amount}}</td></tr>{{/lines}}</tbody>
<tfoot><tr><td>Total</td><td></td><td class="num">{{total}}</td></tr></tfoot></table>
{{/estimate}}
</section>
{{#card}}{{#hasQuotas}}
<section class="card" aria-labelledby="quota-h"><h2 id="quota-h">Prepaid quotas</h2>
<table><thead><tr><th scope="col">Quota</th><th scope="col" class="num">Used</th><th scope="col" class="num">Limit</th><th scope="col">Resets</th></tr></thead>
<tbody>{{#quotas}}<tr><td>{{label}}</td><td class="num">{{used}}</td><td class="num">{{limit}}</td><td>{{resetsAt}}</td></tr>{{/quotas}}</tbody></table>
</section>
{{/hasQuotas}}{{/card}}
{{#active}}
<section class="card" aria-labelledby="manage-h"><h2 id="manage-h">Manage</h2>
<div class="actions">
<form method="post" action="{{base}}/rotate"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">Rotate token</button></form>
{{#hasChoices}}
<form method="post" action="{{base}}/change-plan"><input type="hidden" name="csrf" value="{{csrf}}">
<label for="new-plan">Change plan</label>
<select id="new-plan" name="plan">{{#choices}}<option value="{{id}}">{{name}}</option>{{/choices}}</select>
<button type="submit" class="secondary">Change plan</button></form>
{{/hasChoices}}
<form method="post" action="{{base}}/terminate"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger">Terminate</button></form>
</div>
</section>
{{/active}}
{{/page}}{{/main}}{{/layout}}
"""#

    static let invoices = #"""
{{<layout}}{{$main}}{{#page}}
<h1>Invoices</h1>
<p class="filters">Status: {{#filters}}<a href="{{href}}"{{#current}} aria-current="page"{{/current}}>{{label}}</a>{{/filters}}</p>
<section class="card">
<table><thead><tr><th scope="col">Invoice</th><th scope="col">Customer</th><th scope="col">Period</th><th scope="col">Status</th><th scope="col" class="num">Total</th></tr></thead>
<tbody>{{#invoices}}<tr><td><a href="{{href}}">{{id}}</a></td><td>{{customer}}</td><td>{{period}}</td><td><span class="status {{status}}">{{status}}</span></td><td class="num">{{total}}</td></tr>{{/invoices}}</tbody></table>
{{^invoices}}<p class="muted">No invoices.</p>{{/invoices}}
{{#next}}<p><a href="{{next}}">Next page</a></p>{{/next}}
</section>
{{/page}}{{/main}}{{/layout}}
"""#

    static let invoice = #"""
{{<layout}}{{$main}}{{#page}}
{{#invoice}}
<h1>Invoice {{id}} <span class="status {{status}}" id="invoice-status">{{status}}</span></h1>
<p class="lead">Customer <a href="/dashboard/customers/{{customer}}">{{customer}}</a> · subscription <a href="/dashboard/subscriptions/{{subscription}}">{{subscription}}</a> · {{period}}</p>
<section class="card">
<table><thead><tr><th scope="col">Line</th><th scope="col" class="num">Quantity</th><th scope="col" class="num">Amount</th></tr></thead>
<tbody>{{#lines}}<tr><td>{{description}}</td><td class="num">{{quantity}}</td><td class="num">{{amount}}</td></tr>{{/lines}}</tbody>
<tfoot><tr><td>Total</td><td></td><td class="num">{{total}}</td></tr></tfoot></table>
</section>
<div class="actions">
{{#canFinalize}}<form method="post" action="{{href}}/finalize"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">Finalize</button></form>{{/canFinalize}}
{{#canPay}}<form method="post" action="{{href}}/pay"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="secondary">Record as paid</button></form>{{/canPay}}
{{#canVoid}}<form method="post" action="{{href}}/void"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger" id="void">Void</button></form>{{/canVoid}}
</div>
{{/invoice}}
{{/page}}{{/main}}{{/layout}}
"""#

    static let webhooks = #"""
{{<layout}}{{$main}}{{#page}}
<h1>Webhook deliveries</h1>
<p class="filters">Status: {{#filters}}<a href="{{href}}"{{#current}} aria-current="page"{{/current}}>{{label}}</a>{{/filters}}</p>
<section class="card">
<table><thead><tr><th scope="col">Event</th><th scope="col">Subscription</th><th scope="col">URL</th><th scope="col">Status</th><th scope="col" class="num">Attempts</th><th scope="col">Last error</th><th scope="col"><span class="muted">Action</span></th></tr></thead>
<tbody>{{#deliveries}}<tr><td>{{type}}<br><span class="muted">{{created}}</span></td><td>{{subscription}}</td><td>{{url}}</td><td><span class="status {{status}}">{{status}}</span></td><td class="num">{{attempts}}</td><td>{{lastError}}</td>
<td>{{#canRetry}}<form method="post" action="/dashboard/webhooks/{{id}}/retry"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="secondary" aria-label="Retry delivery {{id}}">Retry</button></form>{{/canRetry}}</td></tr>{{/deliveries}}</tbody></table>
{{^deliveries}}<p class="muted">No deliveries.</p>{{/deliveries}}
{{#next}}<p><a href="{{next}}">Older</a></p>{{/next}}
</section>
{{/page}}{{/main}}{{/layout}}
"""#

    static let catalog = #"""
{{<layout}}{{$main}}{{#page}}
<h1>Catalog</h1>
<p class="lead">Products, meters and plans as one YAML file. <a href="/dashboard/catalog.yaml" download="catalog.yaml">Download catalog.yaml</a></p>
{{#hasProblems}}
<section class="card" aria-labelledby="problems-h">
<h2 id="problems-h">The catalog was not applied: {{problemCount}} problem(s)</h2>
{{#general}}<p class="error">{{.}}</p>{{/general}}
<ul>{{#listed}}<li><a href="#line-{{line}}">line {{line}}</a>: {{text}}</li>{{/listed}}</ul>
<table class="yaml" aria-label="The YAML sent, with each problem next to its line">
<tbody>{{#lines}}<tr id="line-{{number}}"{{#hasProblems}} class="problem"{{/hasProblems}}><td class="line">{{number}}</td><td>{{text}}</td><td class="message">{{#problems}}<span id="problem-{{number}}">{{.}}</span> {{/problems}}</td></tr>{{/lines}}</tbody>
</table>
</section>
{{/hasProblems}}
<form class="card" method="post" action="/dashboard/catalog">
<input type="hidden" name="csrf" value="{{csrf}}">
<label for="yaml">catalog.yaml</label>
<textarea id="yaml" name="yaml" rows="30" spellcheck="false">{{yaml}}</textarea>
<p class="muted">Applying creates or updates every object by id; nothing is deleted. An invalid file changes nothing.</p>
<p><button type="submit" id="apply">Apply</button></p>
</form>
{{/page}}{{/main}}{{/layout}}
"""#
}
