// The Curator peer of bench:sidecar (issue 15): one participant of an Apache Curator
// LeaderLatch election that writes what it is to a state file, as the sidecar writes
// leader.json. Only Debian's jars: curator-recipes/-framework/-client, zookeeper, guava, slf4j.
//
//   java -cp <jars>:<this class's dir> LeaderLatchParticipant \
//     <connect string> <latch path> <participant id> <state file> <session timeout ms>
//
// The state file is JSON, replaced atomically (temp file in the same directory, then rename):
//   {"id":"…","state":"starting"|"follower"|"leader","isLeader":false|true}
// "starting" until the latch's own node exists (it has joined the election), then "follower"
// or "leader". Leader only while the latch holds leadership and the connection is neither
// SUSPENDED nor LOST (as Curator's docs ask of a LeaderLatch user; the latch itself also
// drops leadership on both). SIGTERM (the JVM's shutdown hook): write not-leader, close the
// latch (its node is deleted, so the next in line is told at once: the graceful hand-over),
// then the client.
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.CountDownLatch;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.ExponentialBackoffRetry;

public final class LeaderLatchParticipant {
    private final String id;
    private final Path stateFile;
    private final Path tempFile;
    private final LeaderLatch latch;
    private volatile boolean connected = true;
    private volatile boolean joined = false;
    private volatile boolean closing = false;
    private String written = null;

    private LeaderLatchParticipant(CuratorFramework client, String latchPath, String id, Path stateFile) {
        this.id = id;
        this.stateFile = stateFile;
        this.tempFile = stateFile.resolveSibling("." + stateFile.getFileName() + ".tmp");
        this.latch = new LeaderLatch(client, latchPath, id);
    }

    /** Writes the current state (a function of the latch, the connection and shutdown), if it changed. */
    private synchronized void publish() {
        boolean leader = !closing && connected && latch.hasLeadership();
        String state = leader ? "leader" : joined ? "follower" : "starting";
        String json = "{\"id\":\"" + id + "\",\"state\":\"" + state + "\",\"isLeader\":" + leader + "}\n";
        if (json.equals(written)) return;
        try {
            Files.write(tempFile, json.getBytes(StandardCharsets.UTF_8));
            Files.move(tempFile, stateFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            written = json;
        } catch (IOException e) {
            System.err.println("cannot write " + stateFile + ": " + e);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: LeaderLatchParticipant <connect string> <latch path> <id> <state file> <session timeout ms>");
            System.exit(2);
        }
        String connectString = args[0];
        String latchPath = args[1];
        String id = args[2];
        Path stateFile = Paths.get(args[3]).toAbsolutePath();
        int sessionTimeoutMs = Integer.parseInt(args[4]);

        CuratorFramework client = CuratorFrameworkFactory.builder()
            .connectString(connectString)
            .sessionTimeoutMs(sessionTimeoutMs)
            // Curator warns when the connection timeout exceeds the session timeout.
            .connectionTimeoutMs(sessionTimeoutMs)
            .retryPolicy(new ExponentialBackoffRetry(100, 10, 1000))
            .build();
        LeaderLatchParticipant self = new LeaderLatchParticipant(client, latchPath, id, stateFile);
        self.publish();

        client.getConnectionStateListenable().addListener((c, newState) -> {
            if (newState == ConnectionState.SUSPENDED || newState == ConnectionState.LOST) {
                self.connected = false;
            } else if (newState.isConnected()) {
                self.connected = true;
            }
            self.publish();
        });
        self.latch.addListener(new LeaderLatchListener() {
            @Override
            public void isLeader() {
                self.publish();
            }

            @Override
            public void notLeader() {
                self.publish();
            }
        });

        CountDownLatch done = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            self.closing = true;
            self.publish();
            try {
                self.latch.close();
            } catch (Exception e) {
                System.err.println("closing the latch: " + e);
            }
            client.close();
            done.countDown();
        }, "shutdown"));

        client.start();
        self.latch.start();
        // No callback tells a follower that its node exists: look until the latch has one.
        // Only at start-up (a few milliseconds); the idle process does not poll.
        while (self.latch.getOurPath() == null && !self.closing) Thread.sleep(5);
        self.joined = true;
        self.publish();
        done.await();
    }
}
