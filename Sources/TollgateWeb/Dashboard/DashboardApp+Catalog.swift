import Foundation
import TollgateControl
import TollgateCore
import TollgateStore

extension DashboardApp {
    /// One line of a YAML file sent, with the problems found on it.
    struct YAMLLine: Sendable {
        var number: Int
        var text: String
        var problems: [String]
        var hasProblems: Bool
    }

    /// A problem in the summary above the file, linking to its line.
    struct ListedProblem: Sendable {
        var line: Int
        var text: String
    }

    struct CatalogView: Sendable {
        var yaml: String
        var csrf: String
        var lines: [YAMLLine]
        /// Problems without a line (references checked against the stored catalog).
        var general: [String]
        var problemCount: Int
        /// The problems that have a line, in line order.
        var listed: [ListedProblem]
        var hasProblems: Bool
    }

    func catalogPage(_ current: WebSessions.Current, yaml: String?, problems: [DocumentProblem], notice: String? = nil) async throws
        -> WebResponse
    {
        let text: String
        if let yaml { text = yaml } else { text = try await control.currentCatalog().document().yamlText() }
        let byLine = Dictionary(grouping: problems.filter { $0.line != nil }, by: { $0.line ?? 0 })
        let lines = problems.isEmpty ? [] : text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().map { index, line -> YAMLLine in
            let found = (byLine[index + 1] ?? []).map(Self.problemText)
            return YAMLLine(number: index + 1, text: String(line), problems: found, hasProblems: !found.isEmpty)
        }
        // A problem on a line past the end (or with no line) is listed above the file.
        let general = problems.filter { $0.line == nil || ($0.line ?? 0) > lines.count }.map(Self.problemText)
        var chrome = chrome("Catalog", current, section: "catalog")
        chrome.notice = notice
        return renderer.page("dash-catalog", chrome: chrome, CatalogView(
            yaml: text, csrf: current.csrf, lines: lines, general: general, problemCount: problems.count,
            listed: problems.compactMap { problem in
                problem.line.flatMap { $0 <= lines.count ? ListedProblem(line: $0, text: Self.problemText(problem)) : nil }
            }.sorted { $0.line < $1.line },
            hasProblems: !problems.isEmpty),
            status: problems.isEmpty ? 200 : 422)
    }

    static func problemText(_ problem: DocumentProblem) -> String {
        problem.path.isEmpty ? problem.message : "\(problem.path): \(problem.message)"
    }

    func catalogDownload() async throws -> WebResponse {
        let text = try await control.currentCatalog().document().yamlText()
        var headers = PageRenderer.headers(contentType: "application/yaml; charset=utf-8")
        headers.append(("Content-Disposition", "attachment; filename=\"catalog.yaml\""))
        return WebResponse(status: 200, headers: headers, body: Array(text.utf8))
    }

    func applyCatalog(_ request: WebRequest, _ current: WebSessions.Current) async throws -> WebResponse {
        // Browsers send a textarea's line breaks as CR LF.
        let text = (request.form["yaml"] ?? "").replacingOccurrences(of: "\r\n", with: "\n")
        let catalog: Catalog
        do {
            catalog = try Catalog.parse(yaml: text)
        } catch {
            return try await catalogPage(current, yaml: text, problems: error.problems)
        }
        do {
            try await control.apply(catalog)
        } catch let invalid as InvalidRequest {
            // Problems with references to stored objects come without a line: find it in the file.
            let root = try? DocumentNode.parseYAML(text)
            let located = invalid.problems.map { problem in
                DocumentProblem(path: problem.path, line: problem.line ?? root?.descendant(at: problem.path).line, message: problem.message)
            }
            return try await catalogPage(current, yaml: text, problems: located)
        } catch let error as StoreError {
            return try await catalogPage(current, yaml: text, problems: [DocumentProblem(path: "", line: nil, message: error.message)])
        }
        return try await catalogPage(current, yaml: nil, problems: [], notice: Self.notices["applied"])
    }
}
