import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import OpenAPIRuntime

#if canImport(Glibc)
import Glibc
#endif

/// Transport errors in words a CI log reader understands, and whether repeating can help.
enum TransportProblem {
    /// The transport's own error under the generated client's wrapping.
    static func root(_ error: any Error) -> any Error {
        if let wrapped = error as? ClientError { return root(wrapped.underlyingError) }
        return error
    }

    /// A timeout or a connection dropped mid-way: the server may answer a repeat.
    static func canSucceedLater(_ error: any Error) -> Bool {
        let error = root(error)
        if let error = error as? HTTPClientError {
            return [.connectTimeout, .readTimeout, .remoteConnectionClosed, .writeTimeout].contains(error)
        }
        if case .connectTimeout = error as? ChannelError { return true }
        if let error = error as? IOError { return [ECONNRESET, EPIPE, ETIMEDOUT].contains(error.errnoCode) }
        return false
    }

    /// The connection could not be opened at all (refused, unknown host).
    static func isConnectionFailure(_ error: any Error) -> Bool {
        let error = root(error)
        if error is NIOConnectionError { return true }
        if let error = error as? IOError { return [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH].contains(error.errnoCode) }
        return false
    }

    static func describe(_ error: any Error) -> String {
        let error = root(error)
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout: return "no connection within the connect timeout (is the host reachable and the port right?)"
            case .readTimeout, .deadlineExceeded: return "the server accepted the connection but did not answer in time"
            case .remoteConnectionClosed: return "the server closed the connection"
            default: return "\(error)"
            }
        }
        if case .connectTimeout = error as? ChannelError {
            return "no connection within the connect timeout (is the host reachable and the port right?)"
        }
        if let error = error as? NIOConnectionError {
            if error.dnsAError != nil || error.dnsAAAAError != nil, error.connectionErrors.isEmpty {
                return "the host name could not be resolved"
            }
            if let first = error.connectionErrors.first { return describe(first.error) }
            return "the connection could not be opened"
        }
        if let error = error as? IOError {
            switch error.errnoCode {
            case ECONNREFUSED: return "connection refused (is Kaizen running there, and is the port right?)"
            case EHOSTUNREACH, ENETUNREACH: return "the host is unreachable"
            case ECONNRESET: return "the connection was reset"
            default: return String(cString: strerror(error.errnoCode))
            }
        }
        return "\(error)"
    }
}
