// Helpers shared by both reconcilers: status times, conditions, messages.
package controllers

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxEventNote is the longest note events.k8s.io/v1 accepts.
const maxEventNote = 1024

// setCondition is meta.SetStatusCondition with a transition time from the
// injected clock rather than the wall clock.
func setCondition(conds *[]metav1.Condition, c metav1.Condition, now time.Time) {
	c.LastTransitionTime = metav1.NewTime(now)
	meta.SetStatusCondition(conds, c)
}

func metaTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}
