import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import TollgateBilling
import TollgateCore
import TollgateStore

/// An error answer of the admin and collector APIs: a status and `{"message": ...}`, with the
/// list of problems for 422.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    public var problems: [DocumentProblem]
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ message: String, problems: [DocumentProblem] = [], headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.problems = problems
        self.headers = headers
    }

    static func invalid(_ problems: [DocumentProblem]) -> APIError {
        let summary = problems.map(\.description).joined(separator: "; ")
        return APIError(.unprocessableContent, "invalid request: \(summary)", problems: problems)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var entries: [(String, DocumentNode)] = [("message", .text(message))]
        if !problems.isEmpty {
            entries.append(("problems", DocumentNode(.list(problems.map { problem in
                .object([("path", .text(problem.path)), ("message", .text(problem.message))])
            }))))
        }
        var response = JSONResponse.make(.object(entries), status: status)
        response.headers.append(contentsOf: headers)
        return response
    }
}

/// Turns every error into the JSON shape of the API: known domain errors get their 4xx,
/// Hummingbird's own errors keep their status, anything else is a logged 500 that leaks nothing.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let routes: AdminRouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return try error.response(from: request, context: context)
        } catch let error as InvalidRequest {
            return try APIError.invalid(error.problems).response(from: request, context: context)
        } catch let error as InvalidDocument {
            return try APIError.invalid(error.problems).response(from: request, context: context)
        } catch let error as BillingError {
            let status: HTTPResponse.Status = switch error.code {
            case .paymentFailed: HTTPResponse.Status(code: 402, reasonPhrase: "Payment Required")
            case .notPushed: .conflict
            case .providerUnavailable: .badGateway
            }
            return try APIError(status, error.message).response(from: request, context: context)
        } catch let error as StoreError {
            let status: HTTPResponse.Status = error.code == .notFound ? .notFound : .conflict
            return try APIError(status, error.message).response(from: request, context: context)
        } catch let error as HTTPError {
            if error.status == .notFound {
                let allowed = routes.methods(matching: request.uri.path)
                if !allowed.isEmpty {
                    return try APIError(
                        .methodNotAllowed, "method \(request.method) not allowed here",
                        headers: [.allow: allowed.map(\.rawValue).joined(separator: ", ")]
                    ).response(from: request, context: context)
                }
                return try APIError(.notFound, "no such resource: \(request.uri.path)").response(from: request, context: context)
            }
            let message = error.body ?? error.status.reasonPhrase
            return try APIError(error.status, message).response(from: request, context: context)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(type(of: error))", "path": "\(request.uri.path)"])
            return try APIError(.internalServerError, "internal error").response(from: request, context: context)
        }
    }
}

/// JSON answers built from documents, so responses have the catalog's shapes and key order.
enum JSONResponse {
    static func make(_ document: DocumentNode, status: HTTPResponse.Status = .ok) -> Response {
        let text = document.jsonText()
        return Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// A page of a list: `{"data": [...], "next_cursor": ...}`.
    static func page(_ items: [DocumentNode], nextCursor: String?) -> Response {
        make(.object([("data", DocumentNode(.list(items))), ("next_cursor", .text(nextCursor))]))
    }
}
