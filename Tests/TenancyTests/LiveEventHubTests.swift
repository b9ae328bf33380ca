import Domains
import Synchronization
import Testing

import Tenancy

/// The hub's own logic, in memory: who is woken, what progress reaches whom, and that closing ends every stream.
@Suite struct LiveEventHubTests {
    /// The next `count` signals of a subscription (they are buffered, so this never waits on timing).
    func take(_ count: Int, from subscription: LiveEventHub.Subscription) async -> [LiveEventHub.Signal] {
        var out: [LiveEventHub.Signal] = []
        for await signal in subscription.signals {
            out.append(signal)
            if out.count == count { break }
        }
        return out
    }

    func describe(_ signal: LiveEventHub.Signal) -> String {
        switch signal {
        case .wake: "wake"
        case .heartbeat: "heartbeat"
        case .progress(let p): "progress \(p.workspaceID) \(p.phase.rawValue)"
        }
    }

    @Test func wakesReachOnlyTheirWorkspaceOrPersonAndProgressIsRelayedOnce() async {
        let relayed = RelayLog()
        let hub = LiveEventHub(relay: { relayed.add($0) })
        let a = hub.subscribe(workspaceID: "ws_a")
        let b = hub.subscribe(workspaceID: "ws_b")
        let ann = hub.subscribe(userID: "usr_ann")
        #expect(hub.subscriberCount == 3)

        hub.logAdvanced(workspaceIDs: ["ws_a"])
        hub.publish(IngestProgress(workspaceID: "ws_b", projectID: "prj_1", project: "web", phase: .validating))
        hub.publish(IngestProgress(workspaceID: "ws_b", projectID: "prj_1", project: "web", phase: .storing), fromOtherNode: true)
        hub.inboxesChanged(userIDs: ["usr_ann"])
        hub.logAdvanced(workspaceIDs: nil)
        hub.heartbeat()

        // Each stream starts with a wake (read what committed before subscribing), then gets its own signals.
        #expect(await take(4, from: a).map(describe) == ["wake", "wake", "wake", "heartbeat"])
        #expect(await take(5, from: b).map(describe) == ["wake", "progress ws_b validating", "progress ws_b storing", "wake", "heartbeat"])
        // A person's inbox stream is not woken by a workspace's log.
        #expect(await take(3, from: ann).map(describe) == ["wake", "wake", "heartbeat"])
        // Only this node's own progress goes to the other nodes.
        #expect(relayed.phases == [.validating])
    }

    @Test func closingEndsEveryStreamAndRefusesNewOnes() async {
        let hub = LiveEventHub()
        let open = hub.subscribe(workspaceID: "ws_a")
        hub.close()
        var count = 0
        for await _ in open.signals { count += 1 }
        #expect(count == 1, "the initial wake, then the end")
        let late = hub.subscribe(userID: "usr_ann")
        var lateCount = 0
        for await _ in late.signals { lateCount += 1 }
        #expect(lateCount == 1)
        #expect(hub.subscriberCount == 0)
    }

    @Test func aStreamThatEndsLeavesNothingBehind() async {
        let hub = LiveEventHub()
        do {
            let gone = hub.subscribe(workspaceID: "ws_a")
            _ = await take(1, from: gone)
        }
        // The consumer dropped its stream: the hub no longer holds it.
        #expect(hub.subscriberCount == 0)
    }
}

final class RelayLog: Sendable {
    let items = Mutex<[IngestProgress.Phase]>([])
    func add(_ progress: IngestProgress) { items.withLock { $0.append(progress.phase) } }
    var phases: [IngestProgress.Phase] { items.withLock { $0 } }
}
