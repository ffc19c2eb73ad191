//! The history as a time-ordered doubly-linked list of call and return
//! events. Linearizing an operation lifts its two events out of the list;
//! backtracking puts them back exactly where they were.

/// A position in the list; [`END`] is one past the last event.
pub(crate) type Node = u32;
pub(crate) const END: Node = Node::MAX;
const HEAD: Node = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Call(u32),
    Return(u32),
}

#[derive(Debug, Clone, Copy)]
struct Link {
    event: Event,
    prev: Node,
    next: Node,
}

#[derive(Debug)]
pub(crate) struct EventList {
    /// `links[HEAD]` is a sentinel whose `event` is never read.
    links: Vec<Link>,
    call_node: Vec<Node>,
    return_node: Vec<Option<Node>>,
}

impl EventList {
    /// `spans[op]` is `(call, ret)` of operation `op`, with `ret: None` for
    /// +∞ (no return event), or `None` for an operation not in this list.
    /// Operations must be numbered in call order, so that call events
    /// appear in the list in increasing `op` order.
    pub(crate) fn new(spans: &[Option<(u64, Option<u64>)>]) -> Self {
        // At equal times a call sorts before a return: the two operations
        // count as concurrent, which is the weaker, safe assumption.
        let mut timeline: Vec<(u64, u8, u32)> = Vec::with_capacity(spans.len() * 2);
        for (op, span) in (0u32..).zip(spans) {
            let Some((call, ret)) = *span else { continue };
            timeline.push((call, 0, op));
            if let Some(ret) = ret {
                timeline.push((ret, 1, op));
            }
        }
        timeline.sort_unstable();

        let mut links = Vec::with_capacity(timeline.len() + 1);
        links.push(Link {
            event: Event::Call(u32::MAX),
            prev: END,
            next: END,
        });
        let mut call_node = vec![END; spans.len()];
        let mut return_node = vec![None; spans.len()];
        for (node, &(_, kind, op)) in (1u32..).zip(&timeline) {
            let event = if kind == 0 {
                call_node[op as usize] = node;
                Event::Call(op)
            } else {
                return_node[op as usize] = Some(node);
                Event::Return(op)
            };
            links[node as usize - 1].next = node;
            links.push(Link {
                event,
                prev: node - 1,
                next: END,
            });
        }
        EventList {
            links,
            call_node,
            return_node,
        }
    }

    pub(crate) fn first(&self) -> Node {
        self.links[HEAD as usize].next
    }

    pub(crate) fn next(&self, node: Node) -> Node {
        self.links[node as usize].next
    }

    /// The event at `node`; `None` at [`END`].
    pub(crate) fn event(&self, node: Node) -> Option<Event> {
        (node != END).then(|| self.links[node as usize].event)
    }

    pub(crate) fn call_node(&self, op: u32) -> Node {
        self.call_node[op as usize]
    }

    pub(crate) fn lift(&mut self, op: u32) {
        self.unlink(self.call_node[op as usize]);
        if let Some(ret) = self.return_node[op as usize] {
            self.unlink(ret);
        }
    }

    /// Undoes the most recent [`EventList::lift`] still in effect, which
    /// must have been of `op`.
    pub(crate) fn unlift(&mut self, op: u32) {
        if let Some(ret) = self.return_node[op as usize] {
            self.relink(ret);
        }
        self.relink(self.call_node[op as usize]);
    }

    fn unlink(&mut self, node: Node) {
        let Link { prev, next, .. } = self.links[node as usize];
        self.links[prev as usize].next = next;
        if next != END {
            self.links[next as usize].prev = prev;
        }
    }

    /// Relies on the unlinked node still pointing at its old neighbours.
    fn relink(&mut self, node: Node) {
        let Link { prev, next, .. } = self.links[node as usize];
        self.links[prev as usize].next = node;
        if next != END {
            self.links[next as usize].prev = node;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(list: &EventList) -> Vec<Event> {
        let mut out = Vec::new();
        let mut node = list.first();
        while let Some(event) = list.event(node) {
            out.push(event);
            node = list.next(node);
        }
        out
    }

    #[test]
    fn orders_by_time_with_calls_before_returns_at_equal_times() {
        let list = EventList::new(&[
            Some((0, Some(5))),
            None,
            Some((5, Some(6))),
            Some((7, None)),
        ]);
        assert_eq!(
            events(&list),
            [
                Event::Call(0),
                Event::Call(2),
                Event::Return(0),
                Event::Return(2),
                Event::Call(3),
            ]
        );
    }

    #[test]
    fn unlift_restores_what_lift_removed_in_reverse_order() {
        let mut list = EventList::new(&[Some((0, Some(3))), Some((1, Some(2))), Some((4, None))]);
        let original = events(&list);
        list.lift(1);
        assert_eq!(
            events(&list),
            [Event::Call(0), Event::Return(0), Event::Call(2)]
        );
        list.lift(0);
        list.lift(2);
        assert!(events(&list).is_empty());
        list.unlift(2);
        list.unlift(0);
        assert_eq!(
            events(&list),
            [Event::Call(0), Event::Return(0), Event::Call(2)]
        );
        list.unlift(1);
        assert_eq!(events(&list), original);
    }
}
