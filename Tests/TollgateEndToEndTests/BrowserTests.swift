import Foundation
import Testing
import TollgateApp
import TollgateBilling
import TollgateTestSupport

/// Real headless Chromium, driven by Selenium (PyPI) through Debian's chromedriver, walks through
/// the portal and the dashboard as people would (Resources/browser_walkthrough.py): portal signup →
/// token → a proxied call → the usage on the subscription page → rotation (old token 401, new 200);
/// a one-time link from the admin API (signed in, refused the second time); dashboard sign-in →
/// the customer → its subscription's chart → an invoice voided; a catalog edit with an error shown,
/// then a valid one applied. No page may load anything from outside Tollgate or show a token
/// except the one-time pages.
///
/// `scripts/test` installs Debian's `chromium` and `chromium-driver` (as root) and Selenium into
/// `.build/python-tests`. Without them the test fails and says so. With
/// `TOLLGATE_UI_SCREENSHOTS=DIR` the walk-through saves a screenshot of each main page there
/// (docs/ui/ holds the ones docs/ui.md shows).
@Suite("Headless Chromium")
struct BrowserTests {
    /// A Python with Selenium, or a failure that says how to get one.
    static func python() throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var candidates: [String] = []
        if let given = ProcessInfo.processInfo.environment["TOLLGATE_TEST_PYTHON"], !given.isEmpty { candidates.append(given) }
        candidates.append(root.appendingPathComponent(".build/python-tests/bin/python").path)
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            let site = URL(fileURLWithPath: candidate).deletingLastPathComponent().deletingLastPathComponent()
            let found = (try? FileManager.default.contentsOfDirectory(atPath: site.appendingPathComponent("lib").path))?.contains {
                FileManager.default.fileExists(atPath: site.appendingPathComponent("lib/\($0)/site-packages/selenium").path)
            } ?? false
            if found { return candidate }
        }
        throw TestFailure("Selenium is not installed: run the tests with scripts/test (it installs selenium into .build/python-tests)")
    }

    @Test func peopleUseThePortalAndTheDashboardInChromium() async throws {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw TestFailure("\(tool) is missing: run the tests with scripts/test as root (it installs Debian's chromium and chromium-driver)")
        }
        let python = try Self.python()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources/browser_walkthrough.py").path
        try await withTollgate(configure: { options in
            publicShopPlans(&options)
            options.billing.drafts = true
        }) { server in
            var arguments = [script, server.proxyURL, server.adminURL, server.adminKey]
            if let directory = ProcessInfo.processInfo.environment["TOLLGATE_UI_SCREENSHOTS"], !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                arguments.append(directory)
            }
            let run = try await Subprocess.run(python, arguments, in: TemporaryDirectory.make(), timeout: .seconds(300))
            #expect(run.code == 0, "\(run.output)")
            #expect(run.output.contains("all checks passed"), "\(run.output)")
        }
    }
}
