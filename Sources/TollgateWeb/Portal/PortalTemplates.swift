/// The consumer portal's templates (see `Templates`).
enum PortalTemplates {
    static var all: [(String, String)] {
        [("portal-signup", signup), ("portal-home", home), ("portal-subscription", subscription), ("portal-invoices", invoices)]
    }

    static let signup = #"""
{{<layout}}{{$main}}{{#page}}
<h1>Sign up</h1>
<p class="lead">Pick a plan, tell us who you are, and get your API token at once.</p>
{{#open}}
<form class="card" method="post" action="/_portal/signup">
<input type="hidden" name="form_token" value="{{formToken}}">
<fieldset>
<legend>Plan</legend>
{{#plans}}
<div class="plan-choice">
<input type="radio" name="plan" id="plan-{{id}}" value="{{id}}"{{#checked}} checked{{/checked}} required>
<label for="plan-{{id}}">{{name}} <span class="muted">· {{product}}</span>
<ul>{{#prices}}<li>{{.}}</li>{{/prices}}</ul></label>
</div>
{{/plans}}
{{^plans}}<p>No plans are offered for signup at the moment.</p>{{/plans}}
</fieldset>
<label for="name">Name</label>
<input type="text" id="name" name="name" value="{{name}}" required maxlength="200" autocomplete="organization">
<label for="email">E-mail</label>
<input type="email" id="email" name="email" value="{{email}}" required maxlength="254" autocomplete="email">
<p><button type="submit">Create my account</button></p>
</form>
{{/open}}
{{^open}}<div class="card"><p>Self-serve signup is turned off. Ask the API's provider for access.</p></div>{{/open}}
{{/page}}{{/main}}{{/layout}}
"""#

    static let home = #"""
{{<layout}}{{$main}}{{#page}}
<h1>Your subscriptions</h1>
<p class="lead">Signed in as {{customerName}}.</p>
{{#subscriptions}}
<section class="card" aria-labelledby="sub-{{id}}">
<h2 id="sub-{{id}}"><a href="{{href}}">{{planName}}</a> <span class="muted">· {{product}}</span> <span class="status {{status}}">{{status}}</span></h2>
<p class="muted">Current period: {{periodStart}} – {{periodEnd}}</p>
{{#hasQuotas}}
<table>
<caption class="muted">Prepaid quotas</caption>
<thead><tr><th scope="col">Quota</th><th scope="col" class="num">Used</th><th scope="col" class="num">Limit</th><th scope="col">Left</th><th scope="col">Resets</th></tr></thead>
<tbody>{{#quotas}}<tr><td>{{label}}</td><td class="num">{{used}}</td><td class="num">{{limit}}</td><td><meter min="0" max="{{limit}}" value="{{used}}" aria-label="{{used}} of {{limit}} used">{{used}}/{{limit}}</meter> {{remaining}} left</td><td>{{resetsAt}}</td></tr>{{/quotas}}</tbody>
</table>
{{/hasQuotas}}
{{^hasQuotas}}<p class="muted">No prepaid quota: every call is metered.</p>{{/hasQuotas}}
</section>
{{/subscriptions}}
{{^subscriptions}}<div class="card"><p>You have no subscriptions yet.</p></div>{{/subscriptions}}
{{/page}}{{/main}}{{/layout}}
"""#

    static let subscription = #"""
{{<layout}}{{$main}}{{#page}}
{{#card}}
<h1>{{planName}} <span class="muted">· {{product}}</span> <span class="status {{status}}">{{status}}</span></h1>
<p class="lead">Subscription {{id}} · current period {{periodStart}} – {{periodEnd}}</p>
{{/card}}
<section class="card" aria-labelledby="usage-h">
<h2 id="usage-h">Usage per day</h2>
{{#usage}}
{{> usage}}
{{/usage}}
</section>
<section class="card" aria-labelledby="estimate-h">
<h2 id="estimate-h">Charges so far this period</h2>
{{#estimate}}
{{#hasLines}}
<table><thead><tr><th scope="col">Usage</th><th scope="col" class="num">Quantity</th><th scope="col" class="num">Amount</th></tr></thead>
<tbody>{{#lines}}<tr><td>{{description}}</td><td class="num">{{quantity}}</td><td class="num">{{amount}}</td></tr>{{/lines}}</tbody>
<tfoot><tr><td>Estimated usage charges</td><td></td><td class="num" id="estimate-total">{{total}}</td></tr></tfoot></table>
{{/hasLines}}
{{^hasLines}}<p>This plan has no usage charges: <span id="estimate-total">{{total}}</span> so far.</p>{{/hasLines}}
<p class="muted">Recurring fees are billed at the start of each period and are not included.</p>
{{/estimate}}
</section>
{{#card}}{{#hasQuotas}}
<section class="card" aria-labelledby="quota-h">
<h2 id="quota-h">Prepaid quotas</h2>
<table><thead><tr><th scope="col">Quota</th><th scope="col" class="num">Used</th><th scope="col" class="num">Limit</th><th scope="col">Resets</th></tr></thead>
<tbody>{{#quotas}}<tr><td>{{label}}</td><td class="num">{{used}}</td><td class="num">{{limit}}</td><td>{{resetsAt}}</td></tr>{{/quotas}}</tbody></table>
</section>
{{/hasQuotas}}{{/card}}
{{#active}}
<section class="card" aria-labelledby="manage-h">
<h2 id="manage-h">Manage</h2>
<div class="actions">
<form method="post" action="{{base}}/rotate">
<input type="hidden" name="csrf" value="{{csrf}}">
<button type="submit" id="rotate">Rotate token</button>
</form>
{{#hasChoices}}
<form method="post" action="{{base}}/change-plan">
<input type="hidden" name="csrf" value="{{csrf}}">
<label for="new-plan">Change plan</label>
<select id="new-plan" name="plan">{{#choices}}<option value="{{id}}">{{name}} — {{#prices}}{{.}}; {{/prices}}</option>{{/choices}}</select>
<button type="submit" class="secondary">Change plan</button>
</form>
{{/hasChoices}}
<form method="post" action="{{base}}/cancel">
<input type="hidden" name="csrf" value="{{csrf}}">
<button type="submit" class="danger" id="cancel">Cancel subscription</button>
</form>
</div>
<p class="muted">Rotating gives you a new token at once; the old one stops working immediately. Cancelling ends the subscription now.</p>
</section>
{{/active}}
{{/page}}{{/main}}{{/layout}}
"""#

    static let invoices = #"""
{{<layout}}{{$main}}{{#page}}
<h1>Invoices</h1>
{{#invoices}}
<section class="card" aria-labelledby="inv-{{id}}">
<h2 id="inv-{{id}}">{{period}} <span class="status {{status}}">{{status}}</span> <span class="muted">· {{id}}</span></h2>
<table><thead><tr><th scope="col">Line</th><th scope="col" class="num">Quantity</th><th scope="col" class="num">Amount</th></tr></thead>
<tbody>{{#lines}}<tr><td>{{description}}</td><td class="num">{{quantity}}</td><td class="num">{{amount}}</td></tr>{{/lines}}</tbody>
<tfoot><tr><td>Total</td><td></td><td class="num">{{total}}</td></tr></tfoot></table>
{{#hostedURL}}<p><a href="{{hostedURL}}" rel="noopener noreferrer">View and pay this invoice on Stripe</a></p>{{/hostedURL}}
</section>
{{/invoices}}
{{^invoices}}<div class="card"><p>No invoices yet.</p></div>{{/invoices}}
{{/page}}{{/main}}{{/layout}}
"""#
}
